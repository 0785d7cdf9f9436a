import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controlRequest, controlSocketPath } from '../../../agent/daemon/control-client.js';
import { RING_FILE } from '../../../agent/sampler/open-ring.js';
import { MetricRing } from '../../../native/ring.js';
import { DaemonProcess, notifyFixture, sleep, writeConfig } from './harness.js';

/**
 * A sampler that hangs: the load collector reads `<proc_root>/loadavg`, here a named pipe that a
 * helper writes once. The first sample gets through (READY=1), then the next read blocks in the
 * kernel for good, as on a hung file system. The main thread is fine, but WATCHDOG=1 must stop
 * (systemd then restarts the service), status must say so, and SIGTERM must still end the
 * process within 5 s with the stored sample kept.
 */
const fx = notifyFixture(test, 'icosfl-stall-');
const { dir, daemons } = fx;

test('sampling stalls: watchdog pings stop, status reports it, SIGTERM still ends the process in time', async () => {
  const proc = join(dir, 'proc');
  mkdirSync(proc);
  execFileSync('mkfifo', [join(proc, 'loadavg')]);
  const feeder = spawn('python3', ['-c', `open(${JSON.stringify(join(proc, 'loadavg'))}, 'w').write('0.50 0.40 0.30 1/100 123\\n')`], { stdio: 'ignore' });
  const config = writeConfig(dir, `[sampler]\ninterval_ms = 200\nmetrics = ["load1"]\nproc_root = "${proc}"\n`);
  const d = DaemonProcess.spawn(['run', '--config', config], { NOTIFY_SOCKET: fx.listener.path, WATCHDOG_USEC: '600000' });
  daemons.push(d);
  try {
    const ready = await fx.listener.waitFor('READY=1');
    // Healthy means a sample at most 2 × 200 ms + 1 s old: pings stop by then (plus one period).
    await sleep(3000);
    const late = fx.listener.with('WATCHDOG=1').filter((p) => p.at > ready.at + 1400 + 300 + 200);
    assert.equal(late.map((p) => p.at - ready.at), [], 'no watchdog ping once sampling stalled');
    const st = (await controlRequest(controlSocketPath(join(dir, 'state', 'run')), { cmd: 'status' })) as { healthy: boolean; sampling: { samples_stored: number } };
    assert.is(st.healthy, false);
    assert.is(st.sampling.samples_stored, 1);

    const sentAt = Date.now();
    d.proc.kill('SIGTERM');
    const exit = await d.exited;
    assert.ok(exit.at - sentAt < 5000, `ended ${exit.at - sentAt} ms after SIGTERM`);
    // Ended by SIGTERM's default action (process.exit() would wait on the blocked thread forever).
    assert.is(exit.signal, 'SIGTERM');
    assert.ok(d.logs.some((l) => l.msg === 'ending the process by SIGTERM'), 'says why it ended by signal');
    assert.is(fx.listener.with('STOPPING=1').length, 1);
    const ring = MetricRing.open({ path: join(dir, 'state', RING_FILE), capacity: 86_400, channels: 1, schemaTag: 'load1' });
    try {
      assert.is(ring.size, 1, 'the stored sample survived');
    } finally {
      ring.close();
    }
  } finally {
    feeder.kill();
  }
});

test.run();
