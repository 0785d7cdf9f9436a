import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonProcess, NotifyListener, notifyFixture, sleep, writeConfig, type Datagram } from './harness.js';

/**
 * The watchdog against CPU-heavy work on the main thread (agent/sampler/watchdog-gate.ts):
 * WATCHDOG=1 comes from the sampler's worker thread, so backend calibration and a training
 * round (seconds of tfjs work on the main thread) must not starve it; but a main thread that
 * really stops must still stop the pings, so that systemd kills the process.
 * WATCHDOG_USEC is 2 s here: pings every 1 s, and the main thread may stall at most 1.5 s.
 */
const fx = notifyFixture(test, 'icosfl-watchdog-');
const { dir, daemons } = fx;
const WATCHDOG_MS = 2000;

function pingsBetween(from: number, to: number, l: NotifyListener = fx.listener): Datagram[] {
  return l.with('WATCHDOG=1').filter((p) => p.at > from && p.at <= to);
}

/** systemd's rule: every gap between pings (and from READY to the first) stays under WATCHDOG_USEC. */
function assertNoStarvation(ready: Datagram, until: number): void {
  const times = [ready.at, ...pingsBetween(ready.at, until).map((p) => p.at), until];
  const gaps = times.slice(1).map((t, i) => Math.round(t - times[i]!));
  const worst = Math.max(...gaps);
  assert.ok(worst < WATCHDOG_MS, `longest watchdog gap ${worst} ms ≥ WATCHDOG_USEC (${WATCHDOG_MS} ms); gaps: ${gaps.join(', ')}`);
}

test('WATCHDOG=1 keeps coming through backend calibration and the first training round', async () => {
  // min_samples 60 → training starts once the ring holds 60 + 30 + 5 − 1 samples (~9.4 s at 100 ms);
  // fewer would leave the first round no training windows after the validation split's gap.
  // 'auto' with a heavy-ish MLP calibrates both wasm and cpu: seconds of tfjs work on the main
  // thread (before the fix one synchronous call per backend, which ended in a watchdog kill).
  const trainer = 'enabled = true\nbackend = "auto"\nmodel = "mlp"\nhidden_units = 256\nlookback = 30\nhorizon = 5\nbatch_size = 512\ncalibration_batches = 8\nmin_samples = 60\nepochs = 2';
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 100\nmetrics = ["mem_used_pct", "load1"]\n', 'training.toml', trainer);
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', join(dir, 'training')], { NOTIFY_SOCKET: fx.listener.path, WATCHDOG_USEC: String(WATCHDOG_MS * 1000) });
  daemons.push(d);

  try {
    const ready = await fx.listener.waitFor('READY=1');
    assert.is(pingsBetween(0, ready.at).length, 0, 'no ping before READY=1');
    const round = await d.waitForLog('local training round done', 120_000);
    const calibrated = d.logs.filter((l) => l.msg === 'backend calibrated');
    assert.ok(calibrated.length >= 2, `calibration ran for several backends: ${JSON.stringify(calibrated)}`);
    const roundAt = Date.parse(String(round.time));
    const firstCalibration = Date.parse(String(d.logs.find((l) => l.msg === 'training job started' || l.msg === 'backend not available' || l.msg === 'backend calibrated')!.time));
    // One more ping period, so the time right after the round is covered too.
    await sleep(1200);
    const until = Date.now();
    assertNoStarvation(ready, until);
    // On schedule: about one per second from READY to now (a loaded 2-core box may delay a few).
    const pings = pingsBetween(ready.at, until);
    const expected = (until - ready.at) / (WATCHDOG_MS / 2);
    assert.ok(pings.length >= Math.floor(expected * 0.75), `${pings.length} pings in ${Math.round(until - ready.at)} ms, expected ~${expected.toFixed(1)}`);
    assert.ok(pingsBetween(firstCalibration, roundAt).length >= Math.floor((roundAt - firstCalibration) / (WATCHDOG_MS / 2)) - 1, 'pings kept coming while the trainer started');
    assert.not.ok(d.logs.some((l) => l.msg === 'watchdog ping withheld'), `no ping was withheld: ${JSON.stringify(d.logs.filter((l) => l.msg === 'watchdog ping withheld'))}`);

    const sentAt = Date.now();
    d.proc.kill('SIGTERM');
    const exit = await d.exited;
    assert.is(exit.code, 0, d.stderr);
    assert.ok(exit.at - sentAt < 5000, `exited ${exit.at - sentAt} ms after SIGTERM`);
    const stopping = fx.listener.with('STOPPING=1').at(-1)!;
    assert.ok(fx.listener.with('WATCHDOG=1').every((p) => p.at <= stopping.at + 5), 'no watchdog ping after STOPPING');
  } finally {
    d.kill();
  }
});

/**
 * A main thread that stops: a module preloaded with --import (the test's, not the daemon's; it
 * runs in every thread, so it checks isMainThread) busy-loops the main thread for 5 s once the
 * test creates a trigger file. The sampler thread keeps sampling, but its pings must stop within
 * the 1.5 s bound plus one ping period, and start again once the main thread catches up.
 */
const STALL = `import { isMainThread } from 'node:worker_threads';
import { existsSync } from 'node:fs';
if (isMainThread) {
  const t = setInterval(() => {
    if (!existsSync(process.env.STALL_TRIGGER)) return;
    clearInterval(t);
    process._rawDebug('MAIN-BLOCK-START ' + Date.now());
    const end = Date.now() + 5000;
    while (Date.now() < end);
    process._rawDebug('MAIN-BLOCK-END ' + Date.now());
  }, 20);
  t.unref();
}`;

test('a stalled main thread stops the pings (systemd would kill it); they resume when it recovers', async () => {
  // Its own notify socket: no datagram of another test's daemon can count here.
  mkdirSync(join(dir, 'stall-notify'));
  const own = await NotifyListener.start(join(dir, 'stall-notify'));
  const trigger = join(dir, 'stall-now');
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 100\nmetrics = ["mem_used_pct", "load1"]\n', 'stall.toml');
  const d = DaemonProcess.spawn(
    ['run', '--config', config, '--state-dir', join(dir, 'stall')],
    { NOTIFY_SOCKET: own.path, WATCHDOG_USEC: String(WATCHDOG_MS * 1000), STALL_TRIGGER: trigger },
    ['--import', `data:text/javascript,${encodeURIComponent(STALL)}`],
  );
  daemons.push(d);
  try {
    const ready = await own.waitFor('READY=1');
    await sleep(2500);
    assert.ok(pingsBetween(ready.at, Date.now(), own).length >= 1, 'pings before the stall');
    writeFileSync(trigger, '');
    const until = Date.now() + 15_000;
    while (!/MAIN-BLOCK-END (\d+)/.test(d.stderr) && Date.now() < until) await sleep(50);
    const start = Number(/MAIN-BLOCK-START (\d+)/.exec(d.stderr)?.[1]);
    const end = Number(/MAIN-BLOCK-END (\d+)/.exec(d.stderr)?.[1]);
    assert.ok(start > ready.at && end - start >= 5000, `the main thread was blocked: ${d.stderr}`);
    // Bound 1.5 s + one ping period (1 s) + 300 ms of scheduling slack.
    const late = pingsBetween(start + 1500 + 1000 + 300, end, own);
    assert.equal(late.map((p) => Math.round(p.at - start)), [], 'no watchdog ping while the main thread is stalled');
    // systemd kills at the last ping + WATCHDOG_USEC: that lies inside the stall.
    const lastBefore = pingsBetween(0, end, own).at(-1)!;
    assert.ok(lastBefore.at + WATCHDOG_MS < end, `systemd would have killed it (last ping ${Math.round(lastBefore.at - start)} ms after the stall began)`);
    assert.ok(d.logs.some((l) => l.msg === 'watchdog ping withheld' && /main thread stalled/.test(String(l.reason))), 'the sampler thread says why it withholds the ping');

    await sleep(2500);
    assert.ok(pingsBetween(end, Date.now(), own).length >= 1, 'pings resume after the main thread recovers');
    d.proc.kill('SIGTERM');
    assert.is((await d.exited).code, 0, d.stderr);
  } finally {
    d.kill();
    own.stop();
  }
});

test.run();
