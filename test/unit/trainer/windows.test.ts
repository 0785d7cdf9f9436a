import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fitScaler } from '../../../agent/trainer/scaler.js';
import { buildWindows, chronologicalSplit, concatWindows, knownTargetCounts, sliceWindows, windowStarts } from '../../../agent/trainer/windows.js';

// 10 samples × 2 channels: channel 0 = t, channel 1 = 100 + t.
const series = Float32Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? i / 2 : 100 + (i - 1) / 2));

test('buildWindows lays out x and y like the native ring', () => {
  const ws = buildWindows(series, 2, 3, 2);
  assert.is(ws.n, 6); // 10 − (3 + 2) + 1
  assert.equal(Array.from(ws.x.subarray(0, 6)), [0, 100, 1, 101, 2, 102]);
  assert.equal(Array.from(ws.y.subarray(0, 4)), [3, 103, 4, 104]);
  assert.equal(Array.from(ws.y.subarray(ws.y.length - 2)), [9, 109]);
});

test('windows touching a NaN are skipped and counted', () => {
  const s = series.slice();
  s[2 * 5] = NaN; // sample 5, channel 0
  const ws = buildWindows(s, 2, 3, 2);
  assert.is(ws.skipped, 5); // every window spanning sample 5 (starts 1..5)
  assert.is(ws.n, 1);
  assert.ok(ws.x.every(Number.isFinite) && ws.y.every(Number.isFinite));
});

test('stride and bad arguments', () => {
  assert.is(buildWindows(series, 2, 3, 2, 2).n, 3);
  assert.throws(() => buildWindows(series, 3, 3, 2), /multiple of channels/);
  assert.throws(() => buildWindows(series, 2, 0, 2), /lookback must be a positive integer/);
  assert.is(buildWindows(series, 2, 8, 5).n, 0);
});

test('chronological split leaves a horizon gap so no validation value is a training target', () => {
  const ws = buildWindows(Float32Array.from({ length: 100 }, (_, i) => i), 1, 5, 3);
  const { train, validation } = chronologicalSplit(ws, 0.2);
  const maxTrainTarget = Math.max(...train.y);
  const minValInput = Math.min(...validation.x);
  assert.ok(maxTrainTarget < minValInput, `train target ${maxTrainTarget} must precede validation input ${minValInput}`);
  assert.ok(validation.n >= 18 && train.n >= 65);
});

test('slice and concat keep the layout', () => {
  const ws = buildWindows(series, 2, 3, 2);
  const both = concatWindows([sliceWindows(ws, 0, 2), sliceWindows(ws, 2, 6)]);
  assert.equal(Array.from(both.x), Array.from(ws.x));
  assert.equal(Array.from(both.y), Array.from(ws.y));
  assert.throws(() => concatWindows([ws, buildWindows(series, 2, 4, 2)]), /differ/);
});

test('windowStarts: where each kept window starts; knownTargetCounts: which targets a window could have seen', () => {
  // 10 samples, one channel, sample 4 missing; lookback 2, horizon 1: candidates start at 0…7 and
  // the ones holding sample 4 (starts 2, 3, 4) are skipped.
  const values = Float32Array.from({ length: 10 }, (_, i) => (i === 4 ? NaN : i));
  const starts = windowStarts(values, 1, 2, 1);
  assert.equal(Array.from(starts), [0, 1, 5, 6, 7]);
  const ws = buildWindows(values, 1, 2, 1);
  assert.is(ws.n, 5);
  assert.is(ws.skipped, 3);
  assert.equal(Array.from(ws.y), [2, 3, 7, 8, 9]);
  // Horizon 1: window j's target (sample starts[j] + 2) is known at window t's origin (sample
  // starts[t] + 1) when starts[j] + 1 <= starts[t]. Window 5 follows the gap: both earlier ones.
  assert.equal(Array.from(knownTargetCounts(starts, 1)), [0, 1, 2, 3, 4]);
  // Horizon 3 on the same starts: window j's targets end 3 samples after it starts.
  assert.equal(Array.from(knownTargetCounts(starts, 3)), [0, 0, 2, 2, 2]);
  assert.throws(() => windowStarts(values, 1, 2, 0), /horizon must be a positive integer/);
});

test('scaler: per-channel mean and std with a floor for flat channels', () => {
  const flat = buildWindows(Float32Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 50 : i)), 2, 4, 1);
  const s = fitScaler(flat);
  assert.is(s.std[0], 0.05); // floor: 0.1 % of the level 50
  assert.ok(Math.abs(s.mean[1]! - 20) < 2);
  assert.ok(s.std[1]! > 5);
});

test.run();
