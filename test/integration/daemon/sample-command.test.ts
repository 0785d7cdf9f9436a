import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RING_FILE } from '../../../agent/sampler/open-ring.js';
import { MetricRing } from '../../../native/ring.js';
import { tempDir } from '../../helpers/paths.js';
import { runCli } from './harness.js';

/** `icosfl-agent sample`: samples the real host into the ring, then prints what the ring holds. */
const { dir, cleanup } = tempDir('icosfl-sample-');
test.after(cleanup);

const METRICS = ['cpu_busy_pct', 'mem_used_pct', 'mem_available_bytes', 'load1'];
const ARGS = ['--state-dir', dir, '--set', 'trainer.enabled=false', '--set', 'sampler.interval_ms=200', '--set', `sampler.metrics=${METRICS.join(',')}`];

test('sample --seconds 1: the table lists every metric with stats and the newest rows; the ring keeps them', async () => {
  const r = await runCli(['sample', '--seconds', '1', '--rows', '3', ...ARGS], { LOG_LEVEL: 'warn' });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /stored \d+ samples; wake-up jitter p50/);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, `ring ${join(dir, RING_FILE)}`);
  assert.match(lines[1]!, /^ {2}\d+ samples held \(capacity 131072\), newest \d{4}-/);
  const header = lines.find((l) => l.startsWith('metric'))!;
  assert.ok(header, r.stdout);
  assert.is(header.match(/\d\d:\d\d:\d\d/g)?.length, 3, 'three newest rows as columns');
  for (const m of METRICS) assert.ok(lines.some((l) => l.startsWith(m + ' ')), `${m} row`);
  const mem = lines.find((l) => l.startsWith('mem_used_pct'))!;
  assert.match(mem, /\d+\.\d %/);
  assert.match(lines.find((l) => l.startsWith('mem_available_bytes'))!, /iB/);

  const ring = MetricRing.open({ path: join(dir, RING_FILE), capacity: 86_400, channels: METRICS.length, schemaTag: METRICS.join(',') });
  const held = ring.size;
  ring.close();
  // At most ~5 in 1 s at 200 ms (+ the first at t=0); fewer when the worker's start-up on a loaded
  // 2-core box eats into the second, which is why the lower bound is loose.
  assert.ok(held >= 2 && held <= 7, `about 5 samples in 1 s at 200 ms, held ${held}`);

  // A second run appends to the same ring; --seconds 0 only prints it.
  const again = await runCli(['sample', '--seconds', '0', ...ARGS]);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, `${held} samples held`);
});

test("sample on a directory holding a ring of another layout (the daemon's) refuses and leaves it byte for byte", async () => {
  const other = join(dir, 'daemon-state');
  mkdirSync(other);
  const path = join(other, RING_FILE);
  const ring = MetricRing.open({ path, capacity: 64, channels: 1, schemaTag: 'load1' });
  for (let i = 0; i < 40; i++) ring.push(1000 + i, [i]);
  ring.close();
  const before = readFileSync(path);
  const r = await runCli(['sample', '--seconds', '1', ...ARGS.slice(2), '--state-dir', other]);
  assert.is(r.code, 65, r.stderr);
  assert.match(r.stderr, 'RING_LAYOUT_MISMATCH');
  assert.match(r.stderr, path);
  assert.match(r.stderr, /never migrates or replaces a ring/);
  assert.ok(readFileSync(path).equals(before), 'the ring is untouched');
  assert.equal(readdirSync(other), [RING_FILE], 'nothing set aside, nothing added');
});

test('bad arguments are usage errors naming the flag', async () => {
  const r = await runCli(['sample', '--seconds', 'soon', ...ARGS]);
  assert.is(r.code, 64);
  assert.match(r.stderr, '--seconds must be a number');
  const rows = await runCli(['sample', '--rows', '1000', ...ARGS]);
  assert.is(rows.code, 64);
  assert.match(rows.stderr, '--rows must be an integer from 0 to 100');
});

test.run();
