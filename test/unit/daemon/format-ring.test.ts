import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatRingReport, formatValue } from '../../../agent/sampler/format-ring.js';

test('values are shown in readable units; unknown values as a dot', () => {
  assert.is(formatValue(12.345, 'percent'), '12.3 %');
  assert.is(formatValue(512, 'bytes'), '512 B');
  assert.is(formatValue(3 * 1024 ** 3, 'bytes'), '3.0 GiB');
  assert.is(formatValue(1536, 'bytes/s'), '1.5 KiB/s');
  assert.is(formatValue(41.25, 'watts'), '41.3 W');
  assert.is(formatValue(0.5, 'tasks'), '0.50');
  assert.is(formatValue(NaN, 'percent'), '·');
});

test('the report: one row per channel, newest values under their UTC times', () => {
  const t0 = Date.UTC(2026, 0, 2, 3, 4, 5);
  const text = formatRingReport({
    path: '/state/metrics.ring',
    size: 2,
    capacity: 16,
    channels: ['cpu_busy_pct', 'load1'],
    units: ['percent', 'tasks'],
    stats: { count: Float64Array.of(1, 2), mean: Float64Array.of(50, 1.5), min: Float64Array.of(50, 1), max: Float64Array.of(50, 2) },
    latest: { timestamps: Float64Array.of(t0, t0 + 1000), values: Float32Array.of(NaN, 1, 50, 2) },
  });
  const lines = text.split('\n');
  assert.is(lines[0], 'ring /state/metrics.ring');
  assert.is(lines[1], '  2 samples held (capacity 16), newest 2026-01-02T03:04:06.000Z');
  assert.is(lines[3], 'metric        count    mean     min     max  03:04:05  03:04:06');
  assert.is(lines[4], 'cpu_busy_pct      1  50.0 %  50.0 %  50.0 %         ·    50.0 %');
  assert.is(lines[5], 'load1             2    1.50    1.00    2.00      1.00      2.00');
});

test.run();
