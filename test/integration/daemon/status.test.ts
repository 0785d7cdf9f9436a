import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../../helpers/paths.js';
import { DaemonProcess, runCli, sleep, writeConfig } from './harness.js';

/** `icosfl-agent status` and the Prometheus endpoint against a running daemon. */
const { dir, cleanup } = tempDir('icosfl-status-');
const daemons: DaemonProcess[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  cleanup();
});

test('status with no daemon: a clear error and exit code 69', async () => {
  const config = writeConfig(dir, '', 'nodaemon.toml');
  const r = await runCli(['status', '--config', config]);
  assert.is(r.code, 69);
  assert.match(r.stderr, 'DAEMON_NOT_RUNNING');
  assert.match(r.stderr, join(dir, 'state', 'run', 'agent.sock'));
});

test('status and /metrics against the running daemon', async () => {
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 200\n[prometheus]\nenabled = true\nport = 0\n');
  const d = DaemonProcess.spawn(['run', '--config', config]);
  daemons.push(d);
  await d.waitForLog('ready');
  await sleep(600);

  const human = await runCli(['status', '--config', config]);
  assert.is(human.code, 0, human.stderr);
  assert.match(human.stdout, /sampling healthy/);
  assert.match(human.stdout, /ring\s+\S+metrics\.ring: \d+ \/ \d+ samples/);
  assert.match(human.stdout, /jitter\s+p50 [\d.]+ ms, p99 [\d.]+ ms/);
  assert.match(human.stdout, /cpu\s+on, ok/);
  assert.match(human.stdout, /trainer\s+off/);
  assert.match(human.stdout, /storage\s+ok/);

  const json = await runCli(['status', '--config', config, '--json']);
  assert.is(json.code, 0, json.stderr);
  const st = JSON.parse(json.stdout) as {
    ready: boolean;
    ring: { size: number; capacity: number };
    sampling: { samples_stored: number; last_sample_age_ms: number; jitter_ms: { n: number; p99: number } };
    collectors: { name: string; on: boolean; ok: boolean | null }[];
    prometheus: { url: string };
    trainer: { enabled: boolean; running: boolean };
  };
  assert.ok(st.ready);
  assert.ok(st.ring.size >= 3 && st.ring.size === st.sampling.samples_stored, `ring ${st.ring.size}, stored ${st.sampling.samples_stored}`);
  assert.ok(st.sampling.last_sample_age_ms < 1000);
  assert.ok(st.sampling.jitter_ms.n >= 3 && st.sampling.jitter_ms.p99 >= 0);
  const cpu = st.collectors.find((c) => c.name === 'cpu');
  assert.equal([cpu?.on, cpu?.ok], [true, true]);
  const anyOff = st.collectors.some((c) => !c.on);
  assert.ok(anyOff, 'collectors outside the configured metrics are listed as off');
  assert.equal(st.trainer, { enabled: false, running: false });
  const storage = (JSON.parse(json.stdout) as { storage: { degraded: boolean; failing: unknown[] } }).storage;
  assert.equal([storage.degraded, storage.failing], [false, []]);

  const res = await fetch(st.prometheus.url);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', 'text/plain');
  const text = await res.text();
  assert.match(text, 'icosfl_collector_success{collector="cpu"} 1');
  assert.match(text, /icosfl_collector_duration_seconds\{collector="memory"\} [\d.e-]+/);
  assert.match(text, /icosfl_ring_samples \d+/);
  assert.match(text, /icosfl_ring_fill_ratio [\d.e-]+/);
  assert.match(text, /icosfl_sample_value\{metric="mem_used_pct"\} [\d.e-]+/);
  assert.match(text, 'icosfl_storage_degraded 0');
  assert.match(text, 'icosfl_storage_write_failures_total{kind="model"} 0');
  const stored = Number(/icosfl_samples_stored_total (\d+)/.exec(text)?.[1]);
  assert.ok(stored >= st.sampling.samples_stored, `samples_stored_total ${stored}`);
  assert.match(text, /icosfl_sampler_jitter_seconds\{quantile="0.99"\} [\d.e-]+/);
  assert.ok(!text.includes('icosfl_collector_success{collector="gpu"}'), 'collectors that are off are not exported');
  const notFound = await fetch(st.prometheus.url.replace('/metrics', '/other'));
  assert.is(notFound.status, 404);

  const locked = await runCli(['sample', '--seconds', '0', '--config', config]);
  assert.is(locked.code, 75, 'the running daemon holds the ring');
  assert.match(locked.stderr, /RING_LOCKED.*icosfl-agent status/);

  const unknown = await runCli(['status', '--config', config, '--bogus']);
  assert.is(unknown.code, 64, 'an unknown flag is a usage error');

  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0);
});

test.run();
