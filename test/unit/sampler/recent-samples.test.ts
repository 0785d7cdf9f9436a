// The control socket's `recent` answer from a real ring file: newest samples per metric, oldest
// first, a missing sample as null, and a bad count refused naming what is accepted.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_RECENT_SAMPLES, recentSamples } from '../../../agent/sampler/recent-samples.js';
import { MetricRing } from '../../../native/ring.js';
import { tempDir } from '../../helpers/paths.js';

const { dir, cleanup } = tempDir('icosfl-recent-');
const METRICS = ['cpu_busy_pct', 'mem_used_bytes'];
const ring = MetricRing.open({ path: join(dir, 'ring'), capacity: 64, channels: 2, schemaTag: METRICS.join(',') });
test.after(() => {
  ring.close();
  cleanup();
});
for (let i = 0; i < 10; i++) ring.push(1000 * i, [i, i === 7 ? NaN : 100 * i]);

test('the newest n samples per metric, oldest first; NaN is null', () => {
  const r = recentSamples(ring, METRICS, 1000, 4);
  assert.equal(r, { intervalMs: 1000, timestamps: [6000, 7000, 8000, 9000], values: { cpu_busy_pct: [6, 7, 8, 9], mem_used_bytes: [600, null, 800, 900] } });
  assert.is(recentSamples(ring, METRICS, 1000, 50).timestamps.length, 10, 'no more than the ring holds');
  assert.is(JSON.parse(JSON.stringify(recentSamples(ring, METRICS, 1000, undefined))).values.mem_used_bytes[7], null);
});

test('a count that is not an integer from 1 to MAX_RECENT_SAMPLES is a RangeError', () => {
  for (const bad of [0, -1, 1.5, MAX_RECENT_SAMPLES + 1, 'many']) {
    assert.throws(() => recentSamples(ring, METRICS, 1000, bad), (e: Error) => e instanceof RangeError && e.message === `samples must be an integer from 1 to ${MAX_RECENT_SAMPLES}, got ${String(bad)}`);
  }
});

test.run();
