import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fitMixture, mixForecasts, relativeErrorScores } from '../../../agent/trainer/mixture.js';
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

test('the share is scored on RMSE and MAE together, not on squared error alone', () => {
  // Channel 0 (targets 0): federated is off by 2 on the last window only, local by 1 on every
  // window, so a share β leaves errors β, β, β, 2 − β. Squared error alone is least at β = ½
  // (4β² − 4β + 4); absolute error (2 + 2β) is least at β = 0, and costs more per step of β than
  // RMSE gains, so the joint score picks β = 0, shrunk to 0.25. Channel 1: federated is exact.
  const y = [0, 5, 0, 6, 0, 7, 0, 8];
  const federated = Float32Array.from([0, 5, 0, 6, 0, 7, 2, 8]);
  const local = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 0]);
  assert.equal(fitMixture(federated, local, validation(y)), [0.25, 0.25]);
});

test('relative error scores: each error over the least, 2 for the best on both; a least error of 0 is handled', () => {
  // RMSEs 2, 1, 4 (least 1) and MAEs 3, 6, 3 (least 3).
  assert.equal(relativeErrorScores(Float64Array.from([4, 1, 16]), Float64Array.from([3, 6, 3])), [3, 3, 5]);
  assert.equal(relativeErrorScores(Float64Array.from([1, 1]), Float64Array.from([2, 2])), [2, 2]);
  // An exact candidate: ratio 1 for it, Infinity for the rest (never NaN).
  assert.equal(relativeErrorScores(Float64Array.from([0, 1]), Float64Array.from([0, 1])), [2, Infinity]);
});

test('ties go to the federated model; sizes are checked', () => {
  const y = [1, 1, 1, 1, 1, 1, 1, 1];
  const same = Float32Array.from(y);
  assert.equal(fitMixture(same, same, validation(y)), [0.25, 0.25]);
  assert.throws(() => fitMixture(same, new Float32Array(3), validation(y)), /forecasts have 8 and 3 values, the validation targets 8/);
  assert.throws(() => mixForecasts(same, new Float32Array(3), [0, 0]), /8 vs 3 values/);
});

test.run();
