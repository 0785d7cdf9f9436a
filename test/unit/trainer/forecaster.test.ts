import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { selectBackend } from '../../../agent/trainer/backends.js';
import { parseTrainerConfig } from '../../../agent/trainer/config.js';
import { forecastErrors, persistenceForecast } from '../../../agent/trainer/evaluate.js';
import { Forecaster, trainWithValidation } from '../../../agent/trainer/forecaster.js';
import { fitScaler } from '../../../agent/trainer/scaler.js';
import { tf } from '../../../agent/trainer/tf.js';
import { buildWindows, chronologicalSplit } from '../../../agent/trainer/windows.js';
import { convertNab } from '../../../simulate/convert.js';
import { readClientDir } from '../../../simulate/csv.js';
import { SHARED_DATA, tempDir } from '../../helpers/paths.js';
import { assertRejects } from '../../helpers/rejects.js';

const tmp = tempDir('icosfl-forecaster-');
test.after(() => tmp.cleanup());

// A real trace: NAB's EC2 CPU series c6585a (4,032 samples at 5 min), converted by the real converter.
convertNab(join(SHARED_DATA, 'nab-server-metrics'), tmp.dir, { match: 'ec2_cpu_utilization_825cc2' });
const trace = readClientDir(tmp.dir, ['cpu'])[0]!;

test.before(async () => {
  const spec = { kind: 'mlp' as const, lookback: 12, horizon: 3, channels: 1, hiddenUnits: 16 };
  await selectBackend(parseTrainerConfig({ backend: 'wasm' }), spec);
});

test('an untrained forecaster predicts exactly persistence (zero-initialised output layers)', () => {
  for (const kind of ['linear', 'mlp', 'lstm'] as const) {
    const ws = buildWindows(trace.values.subarray(0, 400), 1, 12, 3);
    const f = new Forecaster({ kind, lookback: 12, horizon: 3, channels: 1, hiddenUnits: 8 }, { seed: 1, learningRate: 0.01, scaler: fitScaler(ws) });
    const pred = f.predict(ws.x, ws.n);
    const pers = persistenceForecast(ws);
    for (let i = 0; i < pred.length; i++) assert.ok(Math.abs(pred[i]! - pers[i]!) < 1e-4, `${kind} index ${i}`);
    f.dispose();
  }
});

test('training on a real trace lowers validation loss and beats persistence on it', async () => {
  const ws = buildWindows(trace.values, 1, 12, 3);
  const { train, validation } = chronologicalSplit(ws, 0.2);
  const f = new Forecaster({ kind: 'mlp', lookback: 12, horizon: 3, channels: 1, hiddenUnits: 16 }, { seed: 7, learningRate: 0.003, scaler: fitScaler(train) });
  const r = await trainWithValidation(f, train, validation, { epochs: 4, batchSize: 64, seed: 3 });
  assert.ok(r.validationLoss < r.initialValidationLoss * 0.98, `validation loss ${r.validationLoss} vs initial ${r.initialValidationLoss}`);
  const model = forecastErrors(f.predict(validation.x, validation.n), validation);
  const pers = forecastErrors(persistenceForecast(validation), validation);
  assert.ok(model.rmse[0]! < pers.rmse[0]!, `model RMSE ${model.rmse[0]} vs persistence ${pers.rmse[0]}`);
  f.dispose();
});

test('relativeLoss: 1 for persistence, below 1 once trained, the ratio of the two losses; flat windows and empty sets', async () => {
  const ws = buildWindows(trace.values, 1, 12, 3);
  const { train, validation } = chronologicalSplit(ws, 0.2);
  const f = new Forecaster({ kind: 'mlp', lookback: 12, horizon: 3, channels: 1, hiddenUnits: 16 }, { seed: 7, learningRate: 0.003, scaler: fitScaler(train) });
  assert.is(f.relativeLoss(validation), 1); // the untrained model forecasts no change
  const persistenceLoss = f.loss(validation);
  await trainWithValidation(f, train, validation, { epochs: 2, batchSize: 64, seed: 3 });
  const r = f.relativeLoss(validation);
  assert.ok(r < 1, `trained relative loss ${r}`);
  assert.ok(Math.abs(r - f.loss(validation) / persistenceLoss) < 1e-6 * r);
  // A window set that never changes: persistence is exact, so any predicted change is infinitely worse.
  const flat = buildWindows(new Float32Array(40).fill(trace.values[0]!), 1, 12, 3);
  assert.ok(f.predict(flat.x, flat.n).some((v, i) => v !== flat.y[i]), 'the trained model predicts a change on flat input');
  assert.is(f.relativeLoss(flat), Infinity);
  const untrained = new Forecaster({ kind: 'mlp', lookback: 12, horizon: 3, channels: 1, hiddenUnits: 16 }, { seed: 7, learningRate: 0.003, scaler: fitScaler(train) });
  assert.is(untrained.relativeLoss(flat), 1); // no change forecast, no change seen: as good as persistence
  untrained.dispose();
  assert.ok(Number.isNaN(f.relativeLoss({ ...validation, n: 0, x: new Float32Array(0), y: new Float32Array(0) })));
  f.dispose();
});

test('per channel: relativeLoss(ws, c) is channel c\'s share of outputErrors over persistence\'s; outputErrors add up to the loss', async () => {
  // Two channels from the real trace: the series and the same series 5 samples later.
  const T = trace.values.length - 5;
  const values = Float32Array.from({ length: 2 * T }, (_, i) => trace.values[(i >> 1) + (i & 1 ? 5 : 0)]!);
  const { train, validation } = chronologicalSplit(buildWindows(values, 2, 12, 3), 0.2);
  const spec = { kind: 'mlp' as const, lookback: 12, horizon: 3, channels: 2, hiddenUnits: 16, channelIndependent: true };
  const f = new Forecaster(spec, { seed: 7, learningRate: 0.003, scaler: fitScaler(train) });
  // The untrained model forecasts no change: its output errors are persistence's.
  const persistence = f.outputErrors(validation);
  await trainWithValidation(f, train, validation, { epochs: 2, batchSize: 64, seed: 3 });
  const errors = f.outputErrors(validation);
  assert.is(errors.length, 3 * 2);
  const total = errors.reduce((a, e) => a + e, 0);
  assert.ok(Math.abs(total / (validation.n * 3 * 2) - f.loss(validation)) < 1e-6 * f.loss(validation));
  for (const c of [0, 1]) {
    const channelSum = (e: Float64Array) => [0, 1, 2].reduce((a, h) => a + e[h * 2 + c]!, 0);
    const r = f.relativeLoss(validation, c);
    assert.ok(Math.abs(r - channelSum(errors) / channelSum(persistence)) < 1e-6 * r, `channel ${c}: ${r}`);
  }
  assert.throws(() => f.relativeLoss(validation, 2), /channel must be an integer in \[0, 2\), got 2/);
  assert.throws(() => f.relativeLoss(validation, 0.5), /channel must be an integer in \[0, 2\), got 0\.5/);
  assert.equal(Array.from(f.outputErrors({ ...validation, n: 0, x: new Float32Array(0), y: new Float32Array(0) })), [0, 0, 0, 0, 0, 0]);
  f.dispose();
});

test('trainWithValidation ranks epochs by validationScore when given one', async () => {
  const ws = buildWindows(trace.values, 1, 12, 3);
  const { train, validation } = chronologicalSplit(ws, 0.2);
  const f = new Forecaster({ kind: 'mlp', lookback: 12, horizon: 3, channels: 1, hiddenUnits: 16 }, { seed: 7, learningRate: 0.003, scaler: fitScaler(train) });
  const start = f.getWeights();
  // A score that only gets worse: the starting weights are kept although the loss improves.
  let calls = 0;
  const r = await trainWithValidation(f, train, validation, { epochs: 3, batchSize: 64, seed: 3, validationScore: () => calls++ });
  assert.is(calls, 4); // the start, then once per epoch
  assert.is(r.bestEpoch, 0);
  assert.is(r.validationLoss, 0);
  assert.equal(Array.from(f.getWeights()), Array.from(start));
  f.dispose();
});

test('weights cross as one flat Float32Array; a wrong length is MODEL_INCOMPATIBLE', () => {
  const spec = { kind: 'mlp' as const, lookback: 6, horizon: 2, channels: 2, hiddenUnits: 5 };
  const a = new Forecaster(spec, { seed: 1, learningRate: 0.01 });
  const b = new Forecaster(spec, { seed: 2, learningRate: 0.01 });
  const w = a.getWeights();
  // joint channels: linear 12→4 (no bias), hidden 12→5 (+5 bias), head 5→4 (no bias)
  assert.is(w.length, 12 * 4 + 12 * 5 + 5 + 5 * 4);
  b.setWeights(w);
  assert.equal(Array.from(b.getWeights()), Array.from(w));
  try {
    b.setWeights(w.subarray(1));
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'MODEL_INCOMPATIBLE'));
    assert.match((err as Error).message, /needs 133/);
  }
  assert.throws(() => b.setWeights(Float32Array.from(w, (_, i) => (i === 3 ? NaN : 0))), /non-finite value at index 3/);
  a.dispose();
  b.dispose();
});

test('no tensor leaks over many training rounds, weight swaps and predictions', async () => {
  const ws = buildWindows(trace.values.subarray(0, 600), 1, 12, 3);
  const { train, validation } = chronologicalSplit(ws, 0.2);
  const f = new Forecaster({ kind: 'mlp', lookback: 12, horizon: 3, channels: 1, hiddenUnits: 8 }, { seed: 1, learningRate: 0.003, scaler: fitScaler(train) });
  const round = async (i: number) => {
    f.resetOptimizer();
    await trainWithValidation(f, train, validation, { epochs: 1, batchSize: 128, seed: i });
    f.setWeights(f.getWeights());
    f.predict(validation.x, validation.n);
  };
  await round(0); // optimizer slots and kernels are created on first use
  const before = tf.memory().numTensors;
  for (let i = 1; i <= 40; i++) await round(i);
  assert.is(tf.memory().numTensors, before);
  f.dispose();
});

test('channel-independent: one univariate model shared by every channel', () => {
  const joint = new Forecaster({ kind: 'linear', lookback: 6, horizon: 2, channels: 3, hiddenUnits: 1 }, { seed: 1, learningRate: 0.01 });
  const shared = new Forecaster({ kind: 'linear', lookback: 6, horizon: 2, channels: 3, hiddenUnits: 1, channelIndependent: true }, { seed: 1, learningRate: 0.01 });
  assert.is(joint.weightCount, 18 * 6);
  assert.is(shared.weightCount, 6 * 2);
  // Weight k of output h reads lag k of the same channel: set "next = 2·last − previous".
  const w = new Float32Array(12);
  w[4 * 2 + 0] = -1; // input t=4 (relative to last) → h=1
  shared.setWeights(w);
  shared.scaler = { mean: [0, 0, 0], std: [1, 2, 4] };
  // Channel c rises by c+1 per step: last values 5·(c+1), relative input at t=4 is −(c+1).
  const x = Float32Array.from({ length: 18 }, (_, i) => (Math.floor(i / 3) * ((i % 3) + 1)));
  const pred = shared.predict(x, 1);
  assert.equal(Array.from(pred.subarray(0, 3)), [6, 12, 18]);
  joint.dispose();
  shared.dispose();
});

test('layout mismatch and missing scaler are named', async () => {
  const f = new Forecaster({ kind: 'linear', lookback: 4, horizon: 1, channels: 1, hiddenUnits: 1 }, { seed: 1, learningRate: 0.01 });
  const ws = buildWindows(trace.values.subarray(0, 50), 1, 5, 1);
  await assertRejects(() => f.train(ws, { epochs: 1, batchSize: 8, seed: 1 }), /windows are 5×1 → 1, the model needs 4×1 → 1/);
  assert.throws(() => f.predict(new Float32Array(4)), /no scaler yet/);
  f.dispose();
});

test('output calibration: changes clipped to the training range, out-of-range windows get persistence, useless channels blend to 0', () => {
  // A linear AR model that shouts: change = 10 × (first − last input) in stds, far beyond the data.
  const f = new Forecaster({ kind: 'linear', lookback: 4, horizon: 1, channels: 1, hiddenUnits: 1 }, { seed: 1, learningRate: 0.01 });
  f.setWeights(Float32Array.of(10, 0, 0, 0));
  // Training and validation: a 0/1 sawtooth. Changes are ±1 = 2 stds (level std 0.5).
  const saw = Float32Array.from({ length: 60 }, (_, i) => i % 2);
  const ws = buildWindows(saw, 1, 4, 1);
  const { train, validation } = chronologicalSplit(ws, 0.3);
  f.scaler = fitScaler(train);
  assert.is(f.scaler.std[0], 0.5);
  const cal = f.calibrateOutput(train, validation);
  assert.equal(cal.changeLimit, [2]);
  // Clipped to ±2 stds (±1), the shouting model is exactly right on the sawtooth: full blend.
  assert.equal(cal.blend, [1]);
  assert.equal(Array.from(f.predict(Float32Array.of(0, 1, 0, 1))), [0]);
  assert.equal(Array.from(f.predict(Float32Array.of(1, 0, 1, 0))), [1]);
  // Recent changes up to twice the training range still use the model (clipped): −20 → −2 stds.
  assert.equal(Array.from(f.predict(Float32Array.of(1, 0, 1, 2))), [1]);
  // A window whose recent change (a jump of 10 = 20 stds) is far outside training: persistence.
  assert.equal(Array.from(f.predict(Float32Array.of(1, 0, 1, 11))), [11]);
  // Validation that never moves: any predicted change only adds error, so the channel blends to 0.
  const flat = buildWindows(Float32Array.from({ length: 20 }, () => 1), 1, 4, 1);
  assert.equal(f.calibrateOutput(train, flat).blend, [0]);
  assert.equal(Array.from(f.predict(Float32Array.of(0, 1, 0, 1))), [1]);
  f.dispose();
});

test.run();
