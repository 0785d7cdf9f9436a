import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonProcess, notifyFixture, sleep, writeConfig } from './harness.js';

/**
 * sd_notify as systemd sees it: a real AF_UNIX datagram socket receives what the real daemon
 * sends. READY=1 comes once the ring is open and holds a sample; WATCHDOG=1 every half of
 * $WATCHDOG_USEC; STOPPING=1 on SIGTERM.
 */
const fx = notifyFixture(test, 'icosfl-notify-');
const { dir, daemons } = fx;

test('READY=1 after the first sample is stored, watchdog pings at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM', async () => {
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 200\nmetrics = ["cpu_busy_pct", "load1"]\n');
  const d = DaemonProcess.spawn(['run', '--config', config], { NOTIFY_SOCKET: fx.listener.path, WATCHDOG_USEC: '600000' });
  daemons.push(d);

  const ready = await fx.listener.waitFor('READY=1');
  // The READY datagram carries the status line: the ring already held a sample when it was sent.
  const status = ready.text.split('\n').find((l) => l.startsWith('STATUS='));
  assert.ok(status, `READY carries a STATUS line: ${ready.text}`);
  const held = /ring (\d+)\/(\d+)/.exec(status!);
  assert.ok(held && Number(held[1]) >= 1, `ring holds a sample at READY: ${status}`);
  assert.is(fx.listener.with('READY=1').length, 1);

  await sleep(2000);
  const pings = fx.listener.with('WATCHDOG=1').filter((p) => p.at > ready.at);
  // 2 s at one ping per 300 ms: 6 or 7 expected; a loaded 2-core box may delay one or two.
  assert.ok(pings.length >= 4 && pings.length <= 8, `watchdog pings in 2 s: ${pings.length}`);
  for (let i = 1; i < pings.length; i++) {
    const gap = pings[i]!.at - pings[i - 1]!.at;
    assert.ok(gap < 600, `watchdog gap ${gap} ms stays under WATCHDOG_USEC`);
  }

  const sentAt = Date.now();
  d.proc.kill('SIGTERM');
  const exit = await d.exited;
  assert.is(exit.code, 0, d.stderr);
  assert.ok(exit.at - sentAt < 5000, `exited ${exit.at - sentAt} ms after SIGTERM`);
  const stopping = fx.listener.with('STOPPING=1');
  assert.is(stopping.length, 1);
  assert.ok(stopping[0]!.at >= sentAt && stopping[0]!.at <= exit.at + 50, 'STOPPING=1 sent between SIGTERM and exit');
  assert.ok(fx.listener.with('WATCHDOG=1').every((p) => p.at <= stopping[0]!.at + 5), 'no watchdog ping after STOPPING');
});

test('no READY=1 when the ring cannot be opened; the daemon exits non-zero', async () => {
  const before = fx.listener.received.length;
  const blocker = join(dir, 'not-a-dir');
  writeFileSync(blocker, 'a file where the state directory should be');
  const config = writeConfig(dir, '', 'bad-state.toml');
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', blocker], { NOTIFY_SOCKET: fx.listener.path });
  daemons.push(d);
  const exit = await d.exited;
  assert.is.not(exit.code, 0);
  assert.match(d.stderr, blocker);
  await sleep(100);
  assert.equal(fx.listener.received.slice(before).filter((m) => m.text.includes('READY=1')), []);
});

test('an invalid config exits 78 naming the key and the file, before any notification', async () => {
  const before = fx.listener.received.length;
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 5\n', 'invalid.toml');
  const d = DaemonProcess.spawn(['run', '--config', config], { NOTIFY_SOCKET: fx.listener.path });
  daemons.push(d);
  const exit = await d.exited;
  assert.is(exit.code, 78);
  assert.match(d.stderr, `sampler.interval_ms (${config}): must be ≥ 50`);
  await sleep(100);
  assert.is(fx.listener.received.length, before);
});

test.run();
