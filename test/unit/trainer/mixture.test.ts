import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fitMixture, mixForecasts } from '../../../agent/trainer/mixture.js';
import type { WindowSet } from '../../../agent/trainer/windows.js';

/** Validation targets only matter here: 4 windows × 1 step × 2 channels. */
const validation = (y: number[]): WindowSet => ({ x: new Float32Array(8), y: Float32Array.from(y), n: 4, lookback: 1, horizon: 1, channels: 2, skipped: 0 });

test('per channel: the share that fits validation best, shrunk halfway toward ½', () => {
  // Channel 0: federated is exact (fitted β = 0). Channel 1: local is exact (fitted β = 1).
  const y = [1, 10, 2, 20, 3, 30, 4, 40];
  const federated = Float32Array.from([1, 0, 2, 0, 3, 0, 4, 0]);
  const local = Float32Array.from([0, 10, 0, 20, 0, 30, 0, 40]);
  assert.equal(fitMixture(federated, local, validation(y)), [0.25, 0.75]);
  // Fitted β = 0.8 on channel 0 (federated low by 4, local high by 1): 0.8 + ½·(0.5 − 0.8) = 0.65.
  const low = Float32Array.from(y, (v, i) => (i % 2 === 0 ? v - 4 : v));
  const slightlyHigh = Float32Array.from(y, (v, i) => (i % 2 === 0 ? v + 1 : v));
  assert.ok(Math.abs(fitMixture(low, slightlyHigh, validation(y))[0]! - 0.65) < 1e-12);
  // Both channels halfway: federated low by 1, local high by 1 → β = 0.5.
  const mid = Float32Array.from(y, (v) => v - 1);
  const high = Float32Array.from(y, (v) => v + 1);
  assert.equal(fitMixture(mid, high, validation(y)), [0.5, 0.5]);
  assert.equal(Array.from(mixForecasts(mid, high, [0.5, 0.5])), y);
});

test('ties go to the federated model; sizes are checked', () => {
  const y = [1, 1, 1, 1, 1, 1, 1, 1];
  const same = Float32Array.from(y);
  assert.equal(fitMixture(same, same, validation(y)), [0.25, 0.25]);
  assert.throws(() => fitMixture(same, new Float32Array(3), validation(y)), /forecasts have 8 and 3 values, the validation targets 8/);
  assert.throws(() => mixForecasts(same, new Float32Array(3), [0, 0]), /8 vs 3 values/);
});

test.run();
