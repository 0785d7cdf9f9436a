import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controlRequest, controlSocketPath } from '../../../agent/daemon/control-client.js';
import { RING_FILE } from '../../../agent/sampler/open-ring.js';
import { Sampler, type ReplayStats } from '../../../agent/sampler/sampler.js';
import { MetricRing } from '../../../native/ring.js';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';
import { DaemonProcess, runCli, sleep, writeConfig } from './harness.js';

/**
 * Replay mode ([sampler] replay_file): the real daemon on a shipped trace (history at start,
 * then streamed, then 'replay finished' and nothing more, values equal to the file's), a held
 * replay at the Sampler level (only the federation job releases it), and a file that fails to parse.
 */
const { dir, cleanup } = tempDir('icosfl-replay-');
const daemons: DaemonProcess[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  cleanup();
});

const METRICS = ['cpu_busy_pct', 'mem_used_pct'];
const TRACE = join(REPO_ROOT, 'data', 'gcd', 'vm_4974862840_6.csv');

/** The CSV's rows as the ring stores them (float32). */
function csvRows(path: string): number[][] {
  const [, ...rows] = readFileSync(path, 'utf8').trimEnd().split('\n');
  return rows.map((r) => r.split(',').slice(1).map((v) => Math.fround(Number(v))));
}

function ringRows(values: Float32Array, channels: number): number[][] {
  return Array.from({ length: values.length / channels }, (_, i) => Array.from(values.subarray(i * channels, (i + 1) * channels)));
}

/** `p`, or a rejection after `ms` (the timer is cleared, so it keeps no test process alive). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface ReplayStatus {
  ready: boolean;
  healthy: boolean;
  ring: { size: number };
  sampling: { samples_stored: number; replay: ReplayStats | null };
  collectors: { ok: boolean | null }[];
}

test('the daemon replays a shipped trace: history at start, then one row per interval, then nothing; values as in the file', async () => {
  const expected = csvRows(TRACE);
  assert.is(expected.length, 288);
  const history = Math.floor(288 * 0.8);
  const runtime = join(dir, 'runtime');
  const config = writeConfig(dir, `[sampler]\ninterval_ms = 50\nmetrics = ${JSON.stringify(METRICS)}\nreplay_file = "${TRACE}"\n`);
  const d = DaemonProcess.spawn(['run', '--config', config, '--runtime-dir', runtime]);
  daemons.push(d);
  await d.waitForLog('ready', 15_000);
  const status = async () => (await controlRequest(controlSocketPath(runtime), { cmd: 'status' })) as ReplayStatus;

  const early = await status();
  const r0 = early.sampling.replay!;
  assert.equal([r0.file, r0.rows, r0.history, r0.held], [TRACE, 288, history, false]);
  assert.is(early.ring.size, history + r0.streamed, 'the ring holds the history rows (plus what streamed since)');
  assert.is(early.sampling.samples_stored, early.ring.size);
  assert.ok(early.collectors.every((c) => c.ok === null), 'no collector runs in replay mode');

  // 58 rows at 50 ms: about 3 s.
  const finished = await d.waitForLog('replay finished', 20_000);
  assert.is(finished.streamed, 288 - history);
  const done = await status();
  assert.equal([done.sampling.replay!.streamed, done.sampling.replay!.done, done.ring.size], [288 - history, true, 288]);
  await sleep(400);
  assert.is((await status()).ring.size, 288, 'no looping: nothing after the last row');
  assert.is(d.logs.filter((l) => l.msg === 'replay finished').length, 1, "'replay finished' once");

  d.proc.kill('SIGTERM');
  assert.is((await within(d.exited, 10_000, 'daemon exit')).code, 0);
  const ring = MetricRing.open({ path: join(dir, 'state', RING_FILE), capacity: 86_400, channels: 2, schemaTag: METRICS.join(',') });
  try {
    const { timestamps, values } = ring.latest(ring.size);
    assert.equal(ringRows(values, 2), expected, 'every row, in order, with the file\'s values');
    const gaps = Array.from(timestamps.subarray(1), (t, i) => t - timestamps[i]!);
    assert.ok(gaps.slice(0, history - 1).every((g) => g === 50), 'history timestamps are interval_ms apart');
    assert.ok(gaps.every((g) => g > 0), 'timestamps increase');
    assert.ok(timestamps[history - 1]! <= timestamps[history]! - 40, 'the stream follows the history by about one interval');
  } finally {
    ring.close();
  }
});

test('a held replay stores the history only, and streams the rest once released (Sampler with a real ring)', async () => {
  const csv = join(dir, 'held.csv');
  const rows = Array.from({ length: 10 }, (_, i) => [i * 300, 10 + i, i === 7 ? '' : 50 + i]);
  writeFileSync(csv, `timestamp,mem_used_pct,cpu_busy_pct\n${rows.map((r) => r.join(',')).join('\n')}\n`);
  const ring = MetricRing.open({ path: join(dir, 'held.ring'), capacity: 64, channels: 2, schemaTag: METRICS.join(',') });
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const sampler = new Sampler({ ring, metrics: METRICS, intervalMs: 50, procRoot: '/nonexistent', sysRoot: '/nonexistent', logLevel: 'silent', logger, replay: { file: csv, history: 0.5, hold: true } });
  try {
    await within(sampler.firstSample(), 5000, 'first sample');
    await sleep(500);
    assert.is(ring.size, 5, 'only the history while held');
    assert.equal(sampler.stats().replay, { file: csv, rows: 10, history: 5, streamed: 0, held: true, done: false });

    const done = new Promise<void>((resolve) => sampler.once('replay-done', resolve));
    sampler.releaseReplay();
    sampler.releaseReplay();
    assert.is(sampler.stats().replay!.held, false);
    await within(done, 5000, 'replay-done');
    assert.equal(sampler.stats().replay, { file: csv, rows: 10, history: 5, streamed: 5, held: false, done: true });
    await sleep(200);
    assert.is(ring.size, 10);
    const got = ringRows(ring.latest(10).values, 2);
    assert.equal(got.map((r) => r[0]), [50, 51, 52, 53, 54, 55, 56, NaN, 58, 59], 'cpu column in metric order; the empty cell is missing');
    assert.equal(got.map((r) => r[1]), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.is(logs.filter((l) => l.msg === 'replay finished').length, 1);
  } finally {
    await sampler.stop();
    ring.close();
  }
});

test('a held replay restarted on its ring does not store its history a second time', async () => {
  const csv = join(dir, 'again.csv');
  writeFileSync(csv, `timestamp,cpu_busy_pct,mem_used_pct\n${Array.from({ length: 10 }, (_, i) => `${i},${i},${i}`).join('\n')}\n`);
  const logger = pino({ level: 'silent' });
  const path = join(dir, 'again.ring');
  for (const run of [1, 2]) {
    const ring = MetricRing.open({ path, capacity: 64, channels: 2, schemaTag: METRICS.join(',') });
    const sampler = new Sampler({ ring, metrics: METRICS, intervalMs: 50, procRoot: '/nonexistent', sysRoot: '/nonexistent', logLevel: 'silent', logger, replay: { file: csv, history: 0.5, hold: true } });
    try {
      await within(sampler.firstSample(), 5000, `first sample, run ${run}`);
      await sleep(300);
      assert.is(ring.size, 5, `run ${run}: the history once`);
      assert.is(sampler.stats().replay!.history, run === 1 ? 5 : 0);
    } finally {
      await sampler.stop();
      ring.close();
    }
  }
});

test('without replay, releaseReplay is a no-op and stats say replay: null', async () => {
  const ring = MetricRing.open({ path: join(dir, 'plain.ring'), capacity: 16, channels: 1, schemaTag: 'load1' });
  const sampler = new Sampler({ ring, metrics: ['load1'], intervalMs: 1000, procRoot: '/proc', sysRoot: '/sys', logLevel: 'silent', logger: pino({ level: 'silent' }) });
  try {
    sampler.releaseReplay();
    await within(sampler.firstSample(), 5000, 'first sample');
    assert.is(sampler.stats().replay, null);
  } finally {
    await sampler.stop();
    ring.close();
  }
});

test('a replay file that fails to parse ends the daemon with DATA_INVALID naming file:line (exit 65)', async () => {
  const csv = join(dir, 'bad.csv');
  writeFileSync(csv, 'timestamp,cpu_busy_pct\n0,1\n300,high\n');
  const sub = join(dir, 'bad');
  const config = writeConfig(dir, `[sampler]\ninterval_ms = 50\nmetrics = ["cpu_busy_pct"]\nreplay_file = "bad.csv"\n`, 'bad.toml');
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', sub]);
  daemons.push(d);
  const exit = await within(d.exited, 10_000, 'daemon exit');
  assert.is(exit.code, 65, d.stderr);
  assert.match(d.stderr, `[DATA_INVALID] ${csv}:3: column 'cpu_busy_pct': 'high' is not a number`);
  assert.not.ok(d.logs.some((l) => l.msg === 'ready'));
});

test('a held replay with no history is refused by check-config (exit 78 naming the key)', async () => {
  const config = writeConfig(dir, `[sampler]\nmetrics = ${JSON.stringify(METRICS)}\nreplay_file = "${TRACE}"\nreplay_history = 0\nreplay_hold = true\n`, 'hold0.toml');
  const r = await runCli(['check-config', '--config', config]);
  assert.is(r.code, 78);
  assert.match(r.stderr, `sampler.replay_hold (${config}): a held replay needs replay_history > 0`);
});

test.run();
