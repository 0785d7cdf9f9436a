import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { METRICS, UNIT_DOMAINS } from '../../../agent/collectors/index.js';
import { clampCounter, clampedWithin, clampForecast, countClamped } from '../../../agent/trainer/forecast-domain.js';

/** Published forecasts stay in each metric's domain (agent/trainer/forecast-domain.ts); the daemon counts the clamps. */

test('every metric of the catalogue has a domain; percentages are 0–100, counts and rates are never negative', () => {
  for (const [name, m] of Object.entries(METRICS)) {
    assert.ok(m.domain.min <= m.domain.max, name);
    assert.equal(m.domain, UNIT_DOMAINS[m.unit], `${name} (${m.unit}) takes its unit's domain`);
  }
  assert.equal(METRICS.cpu_busy_pct!.domain, { min: 0, max: 100 });
  assert.equal(METRICS.net_rx_bytes_per_s!.domain, { min: 0, max: Infinity });
  assert.equal(METRICS.load1!.domain, { min: 0, max: Infinity });
});

test('values outside the domain move to its bound, in place; others, NaN and unknown metrics stay', () => {
  const metrics = ['net_rx_bytes_per_s', 'cpu_busy_pct', 'replayed_column'];
  // [step][metric]: three steps ahead.
  const values = Float32Array.from([-512, 40, -3, 100, 100.5, -7, -0.25, NaN, 1e9]);
  const moved = clampForecast(values, metrics);
  assert.equal(Array.from(values), [0, 40, -3, 100, 100, -7, 0, NaN, 1e9]);
  assert.equal(moved, { net_rx_bytes_per_s: [0, 2], cpu_busy_pct: [1] });
  assert.equal(clampedWithin(moved, 3), { net_rx_bytes_per_s: 2, cpu_busy_pct: 1 });
  assert.equal(clampedWithin(moved, 1), { net_rx_bytes_per_s: 1 });
  assert.equal(clampForecast(Float32Array.from([0, 100, 5]), metrics), {}, 'the bounds themselves are inside');
});

test('the daemon counter adds each clamp under its metric', async () => {
  const registry = new Registry();
  const counter = clampCounter(registry);
  countClamped(counter, { net_rx_bytes_per_s: 2, cpu_busy_pct: 1 });
  countClamped(counter, { net_rx_bytes_per_s: 3 });
  const text = await registry.metrics();
  assert.match(text, '# TYPE icosfl_forecast_clamped_total counter');
  assert.match(text, 'icosfl_forecast_clamped_total{metric="net_rx_bytes_per_s"} 5');
  assert.match(text, 'icosfl_forecast_clamped_total{metric="cpu_busy_pct"} 1');
});

test.run();
