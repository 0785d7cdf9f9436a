import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controlRequest, controlSocketPath } from '../../../agent/daemon/control-client.js';
import { RING_FILE } from '../../../agent/sampler/open-ring.js';
import { MetricRing } from '../../../native/ring.js';
import { tempDir } from '../../helpers/paths.js';
import { DaemonProcess, sleep, writeConfig } from './harness.js';

/** Signals sent to the real entry point: SIGTERM flushes and exits 0; SIGHUP reloads or refuses. */
const { dir, cleanup } = tempDir('icosfl-signals-');
const daemons: DaemonProcess[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  cleanup();
});

interface Status {
  sampling: { interval_ms: number; samples_stored: number };
  last_reload: { ok: boolean; message: string } | null;
  prometheus: { url: string } | null;
}

test('SIGTERM: exit 0 within 5 s, and every sample the daemon stored is in the ring afterwards', async () => {
  const sub = join(dir, 'flush');
  const metrics = ['cpu_busy_pct', 'mem_used_pct', 'load1'];
  const config = writeConfig(dir, `[sampler]\ninterval_ms = 100\nmetrics = ${JSON.stringify(metrics)}\nring_capacity = 1024\n`, 'flush.toml');
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', sub]);
  daemons.push(d);
  await d.waitForLog('ready');
  await sleep(1500);
  const sentAt = Date.now();
  d.proc.kill('SIGTERM');
  const exit = await d.exited;
  assert.is(exit.code, 0, d.stderr);
  assert.ok(exit.at - sentAt < 5000, `exited ${exit.at - sentAt} ms after SIGTERM`);
  const stopped = d.logs.find((l) => l.msg === 'stopped') as { samplesStored: number } | undefined;
  assert.ok(stopped, 'logged "stopped" with its count');
  assert.ok(stopped!.samplesStored >= 10, `stored ${stopped!.samplesStored} samples in ~1.5 s at 100 ms`);

  const ring = MetricRing.open({ path: join(sub, RING_FILE), capacity: 1024, channels: 3, schemaTag: metrics.join(',') });
  try {
    assert.is(ring.size, stopped!.samplesStored, 'the reopened ring holds exactly what the daemon stored');
    const { timestamps, values } = ring.latest(ring.size);
    // A late wake-up is followed by an on-time one (drift-free cadence), so single gaps vary;
    // their mean must be the interval.
    for (let i = 1; i < timestamps.length; i++) assert.ok(timestamps[i]! > timestamps[i - 1]!, 'timestamps increase');
    const meanGap = (timestamps[timestamps.length - 1]! - timestamps[0]!) / (timestamps.length - 1);
    assert.ok(meanGap > 90 && meanGap < 130, `samples 100 ms apart on average, got ${meanGap}`);
    assert.ok(sentAt - timestamps[timestamps.length - 1]! < 400, 'the last sample is from just before SIGTERM');
    // mem_used_pct is known from the first sample; it is a real reading from /proc/meminfo.
    const mem = values[values.length - 2]!;
    assert.ok(mem > 0 && mem < 100, `mem_used_pct ${mem}`);
  } finally {
    ring.close();
  }
});

test('SIGHUP: a broken config is refused and the old one keeps running; a good one applies live', async () => {
  const sub = join(dir, 'reload');
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 200\nmetrics = ["cpu_busy_pct"]\n', 'reload.toml');
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', sub]);
  daemons.push(d);
  await d.waitForLog('ready');
  const socket = controlSocketPath(join(sub, 'run'));

  writeConfig(dir, '[sampler]\ninterval_ms = 200\nmetrics = ["cpu_busy_pct"]\nintervall = 3\n', 'reload.toml');
  let from = d.logs.length;
  d.proc.kill('SIGHUP');
  const rejected = (await d.waitForLog('config reload rejected; keeping the running config', 5000, from)) as { reason: string };
  assert.match(rejected.reason, `sampler.intervall (${config}): unknown key`);
  const before = (await controlRequest(socket, { cmd: 'status' })) as Status;
  await sleep(700);
  const after = (await controlRequest(socket, { cmd: 'status' })) as Status;
  assert.is(d.proc.exitCode, null, 'still running');
  assert.ok(after.sampling.samples_stored > before.sampling.samples_stored, 'still sampling');
  assert.is(after.sampling.interval_ms, 200);
  assert.is(after.last_reload?.ok, false);

  writeConfig(dir, '[sampler]\ninterval_ms = 100\nmetrics = ["cpu_busy_pct"]\n[prometheus]\nenabled = true\nport = 0\n', 'reload.toml');
  from = d.logs.length;
  d.proc.kill('SIGHUP');
  const applied = (await d.waitForLog('config reloaded', 5000, from)) as { applied: string[] };
  assert.ok(applied.applied.includes('sampler.interval_ms') && applied.applied.includes('prometheus.enabled'), JSON.stringify(applied));
  const live = (await controlRequest(socket, { cmd: 'status' })) as Status;
  assert.is(live.sampling.interval_ms, 100);
  assert.ok(live.prometheus?.url.startsWith('http://127.0.0.1:'), 'the metrics endpoint opened on reload');
  const n0 = live.sampling.samples_stored;
  await sleep(1000);
  const n1 = ((await controlRequest(socket, { cmd: 'status' })) as Status).sampling.samples_stored;
  assert.ok(n1 - n0 >= 6 && n1 - n0 <= 13, `about 10 samples per second at 100 ms, got ${n1 - n0}`);

  // A key that needs a restart is reported, not half-applied.
  writeConfig(dir, '[sampler]\ninterval_ms = 100\nmetrics = ["cpu_busy_pct", "load1"]\n[prometheus]\nenabled = true\nport = 0\n', 'reload.toml');
  from = d.logs.length;
  d.proc.kill('SIGHUP');
  const needsRestart = (await d.waitForLog('config keys changed that apply only after a restart', 5000, from)) as { keys: string[] };
  assert.equal(needsRestart.keys, ['sampler.metrics']);

  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0);
});

test.run();
