import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fitMixture, mixForecasts, mixRecent, relativeErrorScores } from '../../../agent/trainer/mixture.js';
import type { WindowSet } from '../../../agent/trainer/windows.js';

/** Validation targets only matter here: 4 windows × 1 step × 2 channels. */
const validation = (y: number[]): WindowSet => ({ x: new Float32Array(8), y: Float32Array.from(y), n: 4, lookback: 1, horizon: 1, channels: 2, skipped: 0 });

test('per channel: the share that fits validation best, shrunk 0.6 of the way toward ½ on a close call', () => {
  // Channel 0: the mixture's errors are (1 − β)·[1, −1, 2, −2] + β·[1, 1, −1, −1]: the best share
  // is 0.7 and the equal mixture scores 8.9 % worse (a close call): 0.7 + 0.6·(0.5 − 0.7) = 0.58.
  // Channel 1: both forecasts off by 1 the same way on every window: a tie, all shares alike.
  const y = [10, 20, 10, 20, 10, 20, 10, 20];
  const federated = Float32Array.from([11, 21, 9, 21, 12, 21, 8, 21]);
  const local = Float32Array.from([11, 21, 11, 21, 9, 21, 9, 21]);
  const shares = fitMixture(federated, local, validation(y));
  assert.ok(Math.abs(shares[0]! - 0.58) < 1e-12, String(shares));
  assert.ok(Math.abs(shares[1]! - 0.3) < 1e-12, String(shares));
  // Both halfway: federated low by 1, local high by 1 → β = 0.5, and the mixture is exact.
  const mid = Float32Array.from(y, (v) => v - 1);
  const high = Float32Array.from(y, (v) => v + 1);
  assert.equal(fitMixture(mid, high, validation(y)), [0.5, 0.5]);
  assert.equal(Array.from(mixForecasts(mid, high, [0.5, 0.5])), y);
});

test('a decisive validation tail keeps its share unshrunk: the equal mixture more than DECISIVE_GAP worse', () => {
  // Channel 0: federated exact (β = 0); channel 1: local exact (β = 1). The equal mixture is
  // infinitely worse on both, so the shares stay 0 and 1 (shrunk, they would be 0.3 and 0.7).
  const y = [1, 10, 2, 20, 3, 30, 4, 40];
  const federated = Float32Array.from([1, 0, 2, 0, 3, 0, 4, 0]);
  const local = Float32Array.from([0, 10, 0, 20, 0, 30, 0, 40]);
  assert.equal(fitMixture(federated, local, validation(y)), [0, 1]);
  // Channel 0 just short of the gap: errors (1 − β)·[2, 0, 1, −1] + β·[−1, 1, 0, 1], best β = 0.6,
  // the equal mixture 9.5 % worse: under DECISIVE_GAP (0.1), so shrunk to 0.6 − 0.6·0.1 = 0.54.
  const y2 = [0, 0, 0, 0, 0, 0, 0, 0];
  const f2 = Float32Array.from([2, 0, 0, 0, 1, 0, -1, 0]);
  const l2 = Float32Array.from([-1, 0, 1, 0, 0, 0, 1, 0]);
  assert.ok(Math.abs(fitMixture(f2, l2, validation(y2))[0]! - 0.54) < 1e-12);
});

test('the share is scored on RMSE and MAE together, not on squared error alone', () => {
  // Channel 0 (targets 0): federated is off by 2 on the last window only, local by 1 on every
  // window, so a share β leaves errors β, β, β, 2 − β. Squared error alone is least at β = ½
  // (4β² − 4β + 4); absolute error (2 + 2β) is least at β = 0, and costs more per step of β than
  // RMSE gains, so the joint score picks β = 0 (2/√3 + 1 = 2.155), and β = ½ scores 1 + 1.5 =
  // 2.5, 16 % worse: decisive, so 0 stays. Channel 1: federated is exact, 0 as well.
  const y = [0, 5, 0, 6, 0, 7, 0, 8];
  const federated = Float32Array.from([0, 5, 0, 6, 0, 7, 2, 8]);
  const local = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 0]);
  assert.equal(fitMixture(federated, local, validation(y)), [0, 0]);
});

test('relative error scores: each error over the least, 2 for the best on both; a least error of 0 is handled', () => {
  // RMSEs 2, 1, 4 (least 1) and MAEs 3, 6, 3 (least 3).
  assert.equal(relativeErrorScores(Float64Array.from([4, 1, 16]), Float64Array.from([3, 6, 3])), [3, 3, 5]);
  assert.equal(relativeErrorScores(Float64Array.from([1, 1]), Float64Array.from([2, 2])), [2, 2]);
  // An exact candidate: ratio 1 for it, Infinity for the rest (never NaN).
  assert.equal(relativeErrorScores(Float64Array.from([0, 1]), Float64Array.from([0, 1])), [2, Infinity]);
});

test('window weights: a window of weight 0 counts for nothing, and weights scale each window', () => {
  // 4 windows × 1 step × 2 channels, as in the first test: weighing the last two windows 0 is
  // fitting on the first two alone.
  const y = [10, 20, 10, 20, 10, 20, 10, 20];
  const federated = Float32Array.from([11, 21, 9, 21, 12, 21, 8, 21]);
  const local = Float32Array.from([11, 21, 11, 21, 9, 21, 9, 21]);
  const firstTwo = { y: Float32Array.from(y.slice(0, 4)), channels: 2 };
  assert.equal(fitMixture(federated, local, validation(y), [1, 1, 0, 0]), fitMixture(federated.subarray(0, 4), local.subarray(0, 4), firstTwo));
  // Weight 2 on a window is that window twice.
  const twice = { y: Float32Array.from([...y, 10, 20]), channels: 2 };
  assert.equal(
    fitMixture(federated, local, validation(y), [1, 1, 2, 1]),
    fitMixture(Float32Array.from([...federated, 12, 21]), Float32Array.from([...local, 9, 21]), twice),
  );
});

test('ties go to the federated model; sizes are checked', () => {
  const y = [1, 1, 1, 1, 1, 1, 1, 1];
  const same = Float32Array.from(y);
  const tie = fitMixture(same, same, validation(y)); // β = 0, shrunk: 0.6·0.5
  assert.ok(tie.every((b) => Math.abs(b - 0.3) < 1e-12), String(tie));
  assert.throws(() => fitMixture(same, new Float32Array(3), validation(y)), /forecasts have 8 and 3 values, the validation targets 8/);
  assert.throws(() => fitMixture(same, same, validation(y), [1, 1, 1]), /3 window weights for 8 target values/);
  assert.throws(() => mixForecasts(same, new Float32Array(3), [0, 0]), /8 vs 3 values/);
});

/**
 * One channel, horizon 1, targets 0, 40 windows: forecast A is exact before window 20 and off by 1
 * from it on, forecast B the other way round. With horizon 1, window j's target is known at window
 * t's origin when j < t, so known = t.
 */
function shiftAt20() {
  const targets = new Float32Array(40);
  const a = Float32Array.from(targets, (_, t) => (t < 20 ? 0 : 1));
  const b = Float32Array.from(targets, (_, t) => (t < 20 ? 1 : 0));
  const from = 10;
  const known = Array.from({ length: 40 - from }, (_, i) => from + i);
  return { targets, a, b, from, known, layout: { horizon: 1, channels: 1 } };
}

test('mixRecent follows a shift as the newer windows outweigh the older, and never reads a target not yet known', () => {
  const { targets, a, b, from, known, layout } = shiftAt20();
  const out = mixRecent([a, b], targets, layout, known, from, 2);
  // Before the shift: A is exact on every known window, the fit is decisive, share 0: exact.
  for (let t = from; t < 20; t++) assert.is(out[t - from], 0, `window ${t}`);
  // Window 20 is forecast before its own target is seen: still all A, off by 1.
  assert.is(out[20 - from], 1);
  // Windows 21 and 22: close calls, one and two windows for B (weights 1, then 1 + e^−½) against
  // A's older ones (about 1.5 and 0.9): best shares 0.3 and 0.8 of B, shrunk 0.6 of the way
  // toward ½: 0.42 and 0.62 of B, so forecasts 0.58 and 0.38.
  assert.ok(Math.abs(out[21 - from]! - 0.58) < 1e-6, String(out[21 - from]));
  assert.ok(Math.abs(out[22 - from]! - 0.38) < 1e-6, String(out[22 - from]));
  // From window 23, B's three newest windows outweigh A decisively: exact again.
  for (let t = 23; t < 40; t++) assert.is(out[t - from], 0, `window ${t}`);
  // Targets not yet known at window 20's origin do not change its forecast.
  const changed = Float32Array.from(targets, (v, t) => (t >= 20 ? 100 : v));
  assert.is(mixRecent([a, b], changed, layout, known, from, 2)[20 - from], 1);
  // A longer memory follows the shift later: with 3, window 21 is still all A.
  assert.is(mixRecent([a, b], targets, layout, known, from, 3)[21 - from], 1);
});

test('mixRecent on a fixed history is fitMixture on that history, stage by stage (the validation-tail protocol)', () => {
  // Two channels, horizon 2, 6 windows: the first 3 are the history, the last 3 are forecast.
  const width = 4;
  const targets = Float32Array.from({ length: 6 * width }, (_, i) => Math.sin(i));
  const fed = Float32Array.from(targets, (v, i) => v + 0.3 * Math.cos(3 * i));
  const ridge = Float32Array.from(targets, (v, i) => v - 0.2 * Math.sin(5 * i) + 0.1);
  const local = Float32Array.from(targets, (v, i) => v + 0.25 * Math.cos(7 * i));
  const history = (a: Float32Array) => a.subarray(0, 3 * width);
  const future = (a: Float32Array) => a.subarray(3 * width);
  const y = { y: history(targets), channels: 2 };
  const ridgeShares = fitMixture(history(fed), history(ridge), y);
  const localShares = fitMixture(mixForecasts(history(fed), history(ridge), ridgeShares), history(local), y);
  const expected = mixForecasts(mixForecasts(future(fed), future(ridge), ridgeShares), future(local), localShares);
  const out = mixRecent([fed, ridge, local], targets, { horizon: 2, channels: 2 }, [3, 3, 3], 3, Infinity);
  assert.equal(Array.from(out), Array.from(expected));
});

test('mixRecent checks its sizes and its known counts', () => {
  const { targets, a, b, from, known, layout } = shiftAt20();
  assert.throws(() => mixRecent([a, b.subarray(1)], targets, layout, known, from), /a forecast has 39 values, the targets 40/);
  assert.throws(() => mixRecent([], targets, layout, known, from), /at least one forecast/);
  assert.throws(() => mixRecent([a, b], targets.subarray(1), { horizon: 2, channels: 1 }, known, from), /39 target values are not whole windows of 2/);
  assert.throws(() => mixRecent([a, b], targets, layout, known.slice(1), from), /29 known counts for 30 windows to forecast/);
  // A window that would read its own target, or none at all.
  assert.throws(() => mixRecent([a, b], targets, layout, known.map((k) => k + 1), from), /window 10 has 11 known windows before it \(1 to 10\)/);
  assert.throws(() => mixRecent([a, b], targets, layout, known.map(() => 0), from), /window 10 has 0 known windows/);
  assert.throws(() => mixRecent([a, b], targets, layout, known, from, 0), /memory must be a positive number of windows or Infinity, got 0/);
  assert.throws(() => mixRecent([a, b], targets, layout, known, from, NaN), /memory must be a positive number of windows or Infinity, got NaN/);
});

test.run();
