import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCollectors } from '../../../agent/collectors/index.js';
import { aggregateGpus, parseNvidiaSmiLine, QUERY_FIELDS } from '../../../agent/collectors/nvidia-smi-reader.js';
import { FIXTURES, tempDir } from '../../helpers/paths.js';
import { captureLogger } from './log-capture.js';

// The GPU collector reads a long-running nvidia-smi. There is no GPU here, so the reader is
// tested against test/fixtures/collectors/fake-nvidia-smi/nvidia-smi, a real child process found
// first on PATH, exactly as the real one would be.

const MIB = 1024 * 1024;
const tmp = tempDir('icosfl-gpu-');
const binDir = join(tmp.dir, 'bin');
const emptyDir = join(tmp.dir, 'empty');
const ORIGINAL_PATH = process.env.PATH;
test.before(() => {
  mkdirSync(binDir);
  mkdirSync(emptyDir);
  copyFileSync(join(FIXTURES, 'collectors', 'fake-nvidia-smi', 'nvidia-smi'), join(binDir, 'nvidia-smi'));
  chmodSync(join(binDir, 'nvidia-smi'), 0o755);
  process.env.PATH = `${binDir}:${ORIGINAL_PATH}`;
});
test.after(() => {
  process.env.PATH = ORIGINAL_PATH;
  tmp.cleanup();
});

function useFake(mode: string): string {
  const log = join(tmp.dir, `${mode}-${Math.random().toString(36).slice(2)}.log`);
  process.env.FAKE_NVSMI_MODE = mode;
  process.env.FAKE_NVSMI_LOG = log;
  return log;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('parser: one csv,noheader,nounits line; [N/A] is NaN; MiB become bytes', () => {
  assert.equal(parseNvidiaSmiLine('0, 37, 1234, 68.50'), { index: 0, utilPct: 37, memUsedBytes: 1234 * MIB, powerWatts: 68.5 });
  const na = parseNvidiaSmiLine('3, 0, 80, [N/A]');
  assert.is(na.index, 3);
  assert.ok(Number.isNaN(na.powerWatts));
  assert.ok(Number.isNaN(parseNvidiaSmiLine('1, [Not Supported], 5, 20').utilPct));
  assert.throws(() => parseNvidiaSmiLine('No devices were found'), /expected 4 comma-separated fields/);
  assert.throws(() => parseNvidiaSmiLine('0, 37%, 1234, 68'), /utilization.gpu "37%"/);
  assert.throws(() => parseNvidiaSmiLine('0.5, 37, 1234, 68'), /integer GPU index/);
});

test('aggregate: mean utilisation, summed memory and power; no GPU → NaN', () => {
  const g = aggregateGpus([parseNvidiaSmiLine('0, 40, 1024, 100'), parseNvidiaSmiLine('1, 60, 2048, 50.5')]);
  assert.equal(g, { utilPct: 50, memUsedBytes: 3072 * MIB, powerWatts: 150.5 });
  assert.ok(Object.values(aggregateGpus([])).every(Number.isNaN));
});

test('reader: one long-running child with the right query; values from its latest lines; close() ends it', async () => {
  const log = useFake('ok');
  const [gpu] = createCollectors({ metrics: ['gpu_util_pct', 'gpu_mem_used_bytes', 'gpu_power_watts'], options: { gpu: { intervalMs: 50 } }, logger: captureLogger().logger });
  const values = await waitFor('GPU values', async () => {
    const v = await gpu!.collect();
    return Number.isFinite(v.gpu_power_watts) ? v : undefined;
  });
  assert.equal(values, { gpu_util_pct: 50, gpu_mem_used_bytes: (1234 + 2048) * MIB, gpu_power_watts: 100 });
  for (let i = 0; i < 5; i++) await gpu!.collect();
  const starts = readFileSync(log, 'utf8').trim().split('\n');
  assert.is(starts.length, 1, 'collect() reads the cache; it never starts nvidia-smi again');
  const [pid, ...args] = starts[0]!.split(' ');
  assert.equal(args, [`--query-gpu=${QUERY_FIELDS}`, '--format=csv,noheader,nounits', '-lms', '50']);
  assert.ok(alive(Number(pid)));
  gpu!.close!();
  await waitFor('nvidia-smi to exit after close()', () => (alive(Number(pid)) ? undefined : true));
});

test('reader: nvidia-smi absent from PATH → skipped cleanly, reported once', async () => {
  process.env.PATH = emptyDir;
  const { logger, lines } = captureLogger();
  try {
    const [gpu] = createCollectors({ metrics: ['gpu_util_pct'], logger });
    const err = await waitFor('the spawn failure', () => gpu!.collect().then(() => undefined, (e: Error) => e));
    assert.match(err.message, /nvidia-smi not found on PATH/);
    for (let i = 0; i < 3; i++) await gpu!.collect().catch(() => undefined);
    assert.is(lines.filter((l) => l.level === 40 && l.collector === 'gpu').length, 1);
    gpu!.close!();
  } finally {
    process.env.PATH = `${binDir}:${ORIGINAL_PATH}`;
  }
});

test('reader: "No devices were found" and exit → failure naming it, restarted after a back-off', async () => {
  const log = useFake('nodevice');
  const [gpu] = createCollectors({ metrics: ['gpu_util_pct'], options: { gpu: { intervalMs: 50 } }, logger: captureLogger().logger });
  const err = await waitFor('the exit', () => gpu!.collect().then(() => undefined, (e: Error) => e));
  assert.match(err.message, /exited \(code 6\): No devices were found/);
  await waitFor('a restart', () => (existsSync(log) && readFileSync(log, 'utf8').trim().split('\n').length >= 2 ? true : undefined), 3000);
  gpu!.close!();
});

test('reader: silence is NaN while starting, then a failure once stale', async () => {
  useFake('silent');
  let now = 0;
  const [gpu] = createCollectors({ metrics: ['gpu_power_watts'], options: { gpu: { intervalMs: 100 } }, clock: () => now, logger: captureLogger().logger });
  assert.ok(Number.isNaN((await gpu!.collect()).gpu_power_watts));
  now = 3001;
  await gpu!.collect().then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /no output from nvidia-smi for 3001 ms/),
  );
  gpu!.close!();
});

test('options: bad interval or command are rejected at creation', () => {
  assert.throws(() => createCollectors({ metrics: ['gpu_util_pct'], options: { gpu: { intervalMs: 0.5 } } }), (e: Error) => e instanceof RangeError && /gpu.intervalMs/.test(e.message));
  assert.throws(() => createCollectors({ metrics: ['gpu_util_pct'], options: { gpu: { command: '' } } }), (e: Error) => e instanceof TypeError && /gpu.command/.test(e.message));
});

test.run();
