import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTrainerConfig } from '../../../agent/trainer/config.js';
import { startTrainingJob, type Forecast } from '../../../agent/trainer/job.js';
import { MODEL_FILE } from '../../../agent/trainer/persist.js';
import { RING_FILE } from '../../../agent/sampler/open-ring.js';
import { childLogger } from '../../../common/log.js';
import { exitCode } from '../../../common/exit-codes.js';
import { MetricRing } from '../../../native/ring.js';
import { twoNabCpuChannels } from '../../helpers/nab-traces.js';
import { tempDir } from '../../helpers/paths.js';
import { DaemonProcess, runCli, sleep } from '../daemon/harness.js';

/**
 * `icosfl-agent backends` and `icosfl-agent predict` through the real entry point
 * (`node dist/agent/cli.js`). For predict, the state directory is prepared the way the daemon
 * leaves it: the agent's ring file (same name, capacity and schema tag as open-ring.ts) filled
 * with two real NAB EC2 CPU traces, and a model saved by one round of the real training job.
 */
const tmp = tempDir('icosfl-agent-cli-');
const stateDir = join(tmp.dir, 'state');
const emptyStateDir = join(tmp.dir, 'empty-state');
const METRICS = ['cpu_busy_pct', 'load1'];
const CAPACITY = 8192;
const TRAINER = { model: 'mlp', lookback: 12, horizon: 3, hidden_units: 16 } as const;

/** The flags that make the CLI's config match the prepared state dir. */
function configFlags(dir: string): string[] {
  return [
    '--state-dir', dir,
    '--set', `sampler.metrics=${METRICS.join(',')}`,
    '--set', `sampler.ring_capacity=${CAPACITY}`,
    ...Object.entries(TRAINER).flatMap(([k, v]) => ['--set', `trainer.${k}=${v}`]),
  ];
}

const daemons: DaemonProcess[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  tmp.cleanup();
});

test.before(async () => {
  const { values, timestampsMs } = twoNabCpuChannels(tmp.dir);
  // The path and schema openStateRing uses for this metric list.
  mkdirSync(stateDir, { recursive: true });
  const ring = MetricRing.open({ path: join(stateDir, RING_FILE), capacity: CAPACITY, channels: METRICS.length, schemaTag: METRICS.join(',') });
  try {
    ring.pushBatch(timestampsMs, values);
    const job = startTrainingJob({
      ring,
      channelNames: METRICS,
      stateDir,
      config: parseTrainerConfig({ ...TRAINER, backend: 'wasm', epochs: 1, batch_size: 128, train_interval_s: 3600, min_samples: 200 }),
      logger: childLogger('agent-cli-test'),
      registry: new Registry(),
      control: { handle: () => undefined },
    });
    try {
      for (let i = 0; ; i++) {
        const s = job.status();
        if (s.version === 1 && s.state === 'idle') break;
        if (s.state === 'failed') throw new Error(`job failed: ${String(s.lastError)}`);
        if (i > 600) throw new Error(`no first round: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await job.stop();
    }
  } finally {
    // The CLI's offline path opens the ring itself; an open handle here would hold its lock.
    ring.close();
  }
  assert.ok(existsSync(join(stateDir, MODEL_FILE)));
});

test('backends: native, wasm and cpu load with a calibrated speed; GPU and tfjs-node candidates say why not', async () => {
  const fast = ['--set', 'trainer.calibration_batches=1', '--set', 'trainer.batch_size=32'];
  const r = await runCli(['backends', ...configFlags(emptyStateDir), ...fast]);
  assert.is(r.code, 0, r.stderr);
  const line = (name: string) => r.stdout.split('\n').find((l) => l.slice(2).startsWith(`${name} `)) ?? '';
  assert.match(r.stdout, /^model mlp, lookback 12, horizon 3, 2 channels, batch 32$/m);
  for (const name of ['native', 'wasm', 'cpu']) {
    const m = line(name).match(/, (\d+) samples\/s$/);
    assert.ok(m && Number(m[1]) > 0, `${name} loaded and calibrated: ${r.stdout}`);
  }
  assert.match(line('wasm'), 'WebAssembly');
  assert.match(line('cpu'), 'plain JavaScript');
  assert.match(line('native'), 'C++ fused step on a worker thread; forward passes in C++, LSTMs on wasm');
  for (const name of ['webgpu', 'tfjs-node', 'tfjs-node-gpu']) assert.match(line(name), /not loaded: \S/, `${name}: ${r.stdout}`);
  assert.match(line('tfjs-node'), '@tensorflow/tfjs-node is not installed');
  assert.match(line('tfjs-node-gpu'), '@tensorflow/tfjs-node-gpu is not installed');
  // Exactly one backend is marked used, the fastest calibrated one under backend = "auto".
  const used = r.stdout.split('\n').filter((l) => l.startsWith('* ') && !l.startsWith('* = '));
  assert.is(used.length, 1, r.stdout);
  assert.match(r.stdout, '* = used: fastest calibrated (backend = "auto")');

  const j = await runCli(['backends', ...configFlags(emptyStateDir), ...fast, '--set', 'trainer.backend=wasm', '--json']);
  assert.is(j.code, 0, j.stderr);
  const out = JSON.parse(j.stdout) as { chosen: string; fastest: string; backends: { name: string; loaded: boolean; reason?: string; samplesPerS?: number }[] };
  assert.is(out.chosen, 'wasm', 'a forced backend is the one reported as used');
  assert.ok(['native', 'wasm', 'cpu'].includes(out.fastest));
  assert.equal(out.backends.map((b) => b.name).sort(), ['cpu', 'native', 'tfjs-node', 'tfjs-node-gpu', 'wasm', 'webgpu']);
  for (const b of out.backends) {
    if (b.name === 'native' || b.name === 'wasm' || b.name === 'cpu') assert.ok(b.loaded && b.samplesPerS! > 0, JSON.stringify(b));
    else assert.ok(!b.loaded && typeof b.reason === 'string' && b.reason.length > 0, JSON.stringify(b));
  }
});

test('predict offline: no daemon, reads the saved model and the ring, prints the next values per metric in its unit', async () => {
  const r = await runCli(['predict', ...configFlags(stateDir), '--horizon', '2']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^model version 1 \(federated round \d+, saved \S+\)$/m);
  assert.match(r.stdout, /^metric\s+\+1\s+\+2$/m);
  assert.not.match(r.stdout, /\+3/);
  // As `sample` prints them: percentages with their sign, load averages as plain numbers.
  const cells = (name: string) => {
    const row = r.stdout.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(row, `a row for ${name}: ${r.stdout}`);
    return row!.slice(name.length).trim().split(/\s{2,}/);
  };
  const cpu = cells('cpu_busy_pct');
  assert.is(cpu.length, 2, cpu.join('|'));
  for (const c of cpu) {
    assert.match(c, /^\d+\.\d %$/, 'one decimal and the percent sign, never negative');
    assert.ok(Number.parseFloat(c) <= 100, c);
  }
  const load = cells('load1');
  assert.is(load.length, 2, load.join('|'));
  for (const c of load) assert.match(c, /^\d+(\.\d\d)?$/);
  assert.match(r.stdout, /^clamped into the metric's domain: (none|\d+ of 4 values \(.+\))$/m);

  // At debug level too, stdout is the JSON object alone (the logs go to stderr).
  const j = await runCli(['predict', ...configFlags(stateDir), '--json'], { LOG_LEVEL: 'debug' });
  assert.is(j.code, 0, j.stderr);
  const f = JSON.parse(j.stdout) as Forecast;
  assert.is(f.version, 1);
  assert.is(f.horizon, 3, 'without --horizon: the model horizon');
  assert.equal(Object.keys(f.forecast), METRICS);
  for (const v of Object.values(f.forecast)) assert.ok(v.length === 3 && v.every(Number.isFinite), JSON.stringify(f));
  // The CPU traces are percentages: the forecast stays in their domain, load averages are never negative.
  for (const v of f.forecast.cpu_busy_pct!) assert.ok(v >= 0 && v <= 100, JSON.stringify(f));
  for (const v of f.forecast.load1!) assert.ok(v >= 0, JSON.stringify(f));
  assert.type(f.clamped, 'object');
  for (const [m, n] of Object.entries(f.clamped)) assert.ok(METRICS.includes(m) && Number.isInteger(n) && n >= 1 && n <= 3, JSON.stringify(f.clamped));
});

test('predict --plot offline: the ring\'s recent samples and the forecast, one panel per metric with its unit', async () => {
  const file = join(tmp.dir, 'offline.svg');
  const r = await runCli(['predict', ...configFlags(stateDir), '--plot', file]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, `plot: ${file} (2 metrics, the last 24 samples and 3 steps ahead)`);
  const svg = readFileSync(file, 'utf8');
  assert.match(svg, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal([...svg.matchAll(/<g class="panel" data-metric="([^"]+)" data-unit="([^"]*)">/g)].map((m) => [m[1], m[2]]), [['cpu_busy_pct', 'percent'], ['load1', 'tasks']]);
  assert.match(svg, />cpu_busy_pct \(%\)</);
  assert.match(svg, />load1 \(tasks\)</);
});

test('predict without a daemon or a saved model: a clear error, exit 69 (unavailable)', async () => {
  const r = await runCli(['predict', ...configFlags(emptyStateDir)]);
  assert.is(r.code, exitCode('UNAVAILABLE'));
  assert.is(r.stdout, '');
  assert.match(r.stderr, /\[DAEMON_NOT_RUNNING\] no daemon is running and no model is saved in .*empty-state/);
});

test('predict --horizon above the model horizon, non-numeric, zero or missing: usage error naming the flag, exit 64', async () => {
  for (const h of ['9', 'abc', '0', '1.5']) {
    const r = await runCli(['predict', ...configFlags(stateDir), '--horizon', h]);
    assert.is(r.code, exitCode('USAGE'), `--horizon ${h}: ${r.stderr}`);
    assert.match(r.stderr, '--horizon', h);
    assert.is(r.stdout, '');
  }
  const above = await runCli(['predict', ...configFlags(stateDir), '--horizon', '9']);
  assert.match(above.stderr, "at most the model's horizon 3, got 9");
  const missing = await runCli(['predict', ...configFlags(stateDir), '--horizon']);
  assert.is(missing.code, exitCode('USAGE'));
  assert.match(missing.stderr, '--horizon');
});

test('predict with a running daemon: answered over the control socket by its training job', async () => {
  // The daemon owns the ring now (its lock); it loads the saved model on start.
  const d = DaemonProcess.spawn(
    ['run', ...configFlags(stateDir), '--set', 'trainer.backend=wasm', '--set', 'trainer.train_interval_s=3600', '--set', 'trainer.epochs=1', '--set', 'sampler.interval_ms=100'],
    { LOG_LEVEL: 'info' },
  );
  daemons.push(d);
  await d.waitForLog('ready', 15_000);
  // The daemon's first sample has no rate yet (NaN), so it answers RING_NOT_ENOUGH_DATA until
  // `lookback` complete samples follow it: ~1.3 s at 100 ms sampling.
  let r = await runCli(['predict', ...configFlags(stateDir), '--horizon', '2', '--json']);
  // Until then, or while the job is still loading TensorFlow.js, it answers TRAINER_NOT_RUNNING.
  for (let i = 0; i < 50 && r.code !== 0 && /RING_NOT_ENOUGH_DATA|TRAINER_NOT_RUNNING/.test(r.stderr); i++) {
    await sleep(200);
    r = await runCli(['predict', ...configFlags(stateDir), '--horizon', '2', '--json']);
  }
  assert.is(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout) as Forecast;
  assert.is(f.backend, 'wasm', 'only the daemon reports a backend');
  assert.ok(f.version >= 1, JSON.stringify(f));
  assert.is(f.horizon, 2);
  assert.equal(Object.keys(f.forecast), METRICS);
  for (const v of Object.values(f.forecast)) assert.ok(v.length === 2 && v.every(Number.isFinite), JSON.stringify(f));

  const text = await runCli(['predict', ...configFlags(stateDir)]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /^model version \d+ \(federated round \d+, saved \S+\), backend wasm$/m);

  const bad = await runCli(['predict', ...configFlags(stateDir), '--horizon', '9']);
  assert.is(bad.code, exitCode('USAGE'), bad.stderr);
  assert.match(bad.stderr, '--horizon 9');
  assert.match(bad.stderr, 'horizon must be an integer from 1 to 3, got 9');

  d.proc.kill('SIGTERM');
  const exit = await d.exited;
  assert.is(exit.code, 0, d.stderr);
});

test('predict with a running daemon that has no training job says why, not "unknown command"', async () => {
  const cases = [
    // Training disabled: nothing will ever answer, so a service-unavailable exit.
    { dir: stateDir, set: ['trainer.enabled=false'], code: exitCode('UNAVAILABLE'), message: /\[TRAINER_NOT_RUNNING\] daemon refused 'predict': training is disabled in this daemon's config \(trainer\.enabled = false\)/ },
    // A fresh ring, far from the samples the first round needs: retry later.
    { dir: join(tmp.dir, 'fresh-state'), set: ['trainer.min_samples=8000'], code: exitCode('TEMP_FAIL'), message: /\[RING_NOT_ENOUGH_DATA\] daemon refused 'predict': the training job starts once the ring holds 8014 samples; it holds \d+/ },
  ];
  for (const c of cases) {
    const d = DaemonProcess.spawn(['run', ...configFlags(c.dir), ...c.set.flatMap((s) => ['--set', s]), '--set', 'sampler.interval_ms=100'], { LOG_LEVEL: 'info' });
    daemons.push(d);
    await d.waitForLog('ready', 15_000);
    const r = await runCli(['predict', ...configFlags(c.dir)]);
    assert.is(r.code, c.code, r.stderr);
    assert.match(r.stderr, c.message);
    assert.is(r.stdout, '');
    d.proc.kill('SIGTERM');
    assert.is((await d.exited).code, 0, d.stderr);
  }
});

test.run();
