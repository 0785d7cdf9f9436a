import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCandidates, selectBackend, type Candidate } from '../../../agent/trainer/backends.js';
import { parseTrainerConfig } from '../../../agent/trainer/config.js';
import { Forecaster } from '../../../agent/trainer/forecaster.js';
import { fusedEngine, TFJS_ADAM, type DenseLayout } from '../../../agent/trainer/fused-step.js';
import type { ModelSpec } from '../../../agent/trainer/model.js';
import { tf } from '../../../agent/trainer/tf.js';
import { isIcosflError } from '../../../common/errors.js';
import { NativeDenseTrainer } from '../../../native/dense-trainer.js';
import { loadAddon } from '../../../native/load-addon.js';
import { assertSameTraining, countCppForwards, maxAbsDiff, nabTrainingData, trainOn, type TrainCall } from '../../helpers/fused-step.js';
import { tempDir } from '../../helpers/paths.js';
import { assertRejects } from '../../helpers/rejects.js';

/**
 * The fused CPU training step in C++ (native/src/dense-step.cpp, the 'native' backend): the same
 * maths as tfjs's training of the dense models, checked against tfjs's CPU backend on real
 * traces; off the main thread; and every error the wrapper and the addon throw.
 */
const candidates = defaultCandidates();
const byName = (cs: Candidate[], name: string) => cs.find((c) => c.name === name)!;
await byName(candidates, 'native').load();

const tmp = tempDir('icosfl-native-dense-');
test.after(() => tmp.cleanup());
const data = nabTrainingData(tmp.dir);
const { train, validation, scaler } = data;

/** Weights after the same training calls on tfjs's CPU backend and on the native fused step. */
async function trainBoth(spec: ModelSpec, calls: TrainCall[]) {
  return { tfjs: await trainOn(byName(candidates, 'cpu'), spec, data, calls), native: await trainOn(byName(candidates, 'native'), spec, data, calls) };
}

const calls: TrainCall[] = [
  { epochs: 2, batchSize: 97, seed: 1 },
  { epochs: 1, batchSize: 256, seed: 2 },
  { epochs: 1, batchSize: 64, seed: 3, reset: true },
];

test('native MLP step = tfjs step: same weights after epochs, a partial batch, a second call and an optimizer reset', async () => {
  // rows = 2 × train.n; batch 97 never divides it, so every epoch ends on a partial batch.
  const spec: ModelSpec = { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 64, channelIndependent: true };
  const { tfjs, native } = await trainBoth(spec, calls);
  assertSameTraining(tfjs, native, 'mlp');
  // And training did something: the weights moved far more than the two engines disagree.
  const diff = maxAbsDiff(tfjs.weights, native.weights);
  const untrained = new Forecaster({ kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 64, channelIndependent: true }, { seed: 11, learningRate: 0.003, scaler });
  assert.ok(maxAbsDiff(untrained.getWeights(), native.weights) > 100 * diff);
  untrained.dispose();
});

test('native linear and joint-channel models = tfjs', async () => {
  for (const spec of [
    { kind: 'linear', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 8, channelIndependent: true },
    { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 24, channelIndependent: false },
  ] satisfies ModelSpec[]) {
    const { tfjs, native } = await trainBoth(spec, calls.slice(0, 2));
    assertSameTraining(tfjs, native, `${spec.kind}, ${spec.channelIndependent ? 'independent' : 'joint'} channels`);
  }
});

test('an LSTM has no fused step: with native active it trains on tfjs', async () => {
  await byName(candidates, 'native').activate();
  const f = new Forecaster({ kind: 'lstm', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 4, channelIndependent: true }, { seed: 1, learningRate: 0.003, scaler });
  assert.is(f.trainsOffMainThread, false);
  const before = f.loss(validation);
  const r = await f.train(train, { epochs: 1, batchSize: 256, seed: 1 });
  assert.ok(Number.isFinite(r.loss) && f.loss(validation) !== before);
  f.dispose();
});

test('training runs off the main thread: the event loop keeps turning until it resolves', async () => {
  await byName(candidates, 'native').activate();
  const f = new Forecaster({ kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 64, channelIndependent: true }, { seed: 1, learningRate: 0.003, scaler });
  assert.ok(f.trainsOffMainThread);
  let turns = 0;
  let spinning = true;
  const spin = () => {
    turns++;
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  // 20 epochs of ~1,900 rows: tens of milliseconds of C++ work at the least.
  await f.train(train, { epochs: 20, batchSize: 64, seed: 1 });
  spinning = false;
  // On the main thread (tfjs, or a synchronous addon call) not one turn would happen in between.
  assert.ok(turns > 1, `event loop turns during training: ${turns}`);
  f.dispose();
});

test('forcing native selects it: training and dense forward passes in C++, tfjs on WASM; no tfjs tensor leaks over 10 rounds', async () => {
  const spec: ModelSpec = { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 16, channelIndependent: true };
  const { chosen, statuses } = await selectBackend(parseTrainerConfig({ backend: 'native', batch_size: 64, calibration_batches: 2 }), spec);
  assert.is(chosen, 'native');
  assert.match(statuses[0]!.device!, /^C\+\+ fused step on a worker thread; forward passes in C\+\+, LSTMs on wasm$/);
  assert.is(fusedEngine()?.kind, 'native');
  assert.is(tf.getBackend(), 'wasm');
  const f = new Forecaster(spec, { seed: 1, learningRate: 0.003, scaler });
  await f.train(train, { epochs: 1, batchSize: 64, seed: 0 });
  const tensors = tf.memory().numTensors;
  for (let i = 1; i <= 10; i++) {
    await f.train(train, { epochs: 1, batchSize: 64, seed: i });
    f.predict(validation.x, validation.n);
  }
  assert.is(tf.memory().numTensors, tensors);
  f.dispose();
  await byName(candidates, 'wasm').activate();
  assert.is(fusedEngine(), undefined);
});

test('with a fused engine, dense forward passes run in C++ and agree with tfjs', async () => {
  for (const spec of [
    { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 64, channelIndependent: true },
    { kind: 'linear', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 8, channelIndependent: true },
    { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 24, channelIndependent: false },
  ] satisfies ModelSpec[]) {
    await byName(candidates, 'native').activate();
    const f = new Forecaster(spec, { seed: 1, learningRate: 0.003, scaler });
    await f.train(train, { epochs: 2, batchSize: 64, seed: 1 });
    const run = () => ({ forecast: f.predict(validation.x, validation.n), loss: f.loss(validation) });
    const native = await countCppForwards(run);
    assert.is(native.calls, 2, `${spec.kind}: predict and loss ran in C++`);
    await byName(candidates, 'wasm').activate();
    const onWasm = await countCppForwards(run);
    assert.is(onWasm.calls, 0, `${spec.kind}: without a fused engine tfjs runs them`);
    const [cpp, tfjs] = [native.result, onWasm.result];
    // Float summation order only: forecasts are in original units (CPU %), tens in size.
    const scale = tfjs.forecast.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbsDiff(cpp.forecast, tfjs.forecast) <= 1e-5 * scale, `${spec.kind}: forecasts differ by ${maxAbsDiff(cpp.forecast, tfjs.forecast)} (scale ${scale})`);
    assert.ok(Math.abs(cpp.loss - tfjs.loss) <= 1e-5 * tfjs.loss, `${spec.kind}: loss ${cpp.loss} vs ${tfjs.loss}`);
    assert.ok(tfjs.loss > 0 && Number.isFinite(tfjs.loss));
    f.dispose();
  }
});

test('a NaN that reaches training is TRAINING_FAILED and leaves the weights as they were', async () => {
  await byName(candidates, 'native').activate();
  const f = new Forecaster({ kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 16, channelIndependent: true }, { seed: 1, learningRate: 0.003, scaler });
  const before = f.getWeights();
  // The ring never yields such a window (windows() skips missing values); a caller's bug could.
  const x = train.x.slice();
  x[123] = NaN;
  try {
    await f.train({ ...train, x }, { epochs: 1, batchSize: 64, seed: 1 });
    assert.unreachable('training on a NaN input must fail');
  } catch (err) {
    assert.ok(isIcosflError(err, 'TRAINING_FAILED'), String(err));
    assert.match((err as Error).message, /training loss became NaN/);
  }
  assert.equal(f.getWeights(), before);
  f.dispose();
});

// ---- errors: the wrapper's checks, then the addon's own (reached by calling it directly) ----

const layout: DenseLayout = { inputs: 3, outputs: 2, hidden: 4, linearKernel: 0, hiddenKernel: 6, hiddenBias: 18, headKernel: 22, size: 30 };
const rows = 5;
const input = () => ({
  x: new Float32Array(rows * 3).fill(0.5),
  t: new Float32Array(rows * 2).fill(0.1),
  rows,
  order: Uint32Array.from({ length: rows * 2 }, (_, i) => i % rows),
  epochs: 2,
  batchSize: 2,
  learningRate: 0.01,
});

test('the wrapper trains a hand-made layout and names every bad argument', async () => {
  const t = new NativeDenseTrainer(layout, TFJS_ADAM);
  const w = new Float32Array(30).fill(0.1);
  const r = await t.train(w, input());
  assert.is(r.weights.length, 30);
  assert.is(r.epochLosses.length, 2);
  assert.ok(r.epochLosses[1]! < r.epochLosses[0]!, `loss ${r.epochLosses[0]} → ${r.epochLosses[1]}`);
  assert.is(w[0], Math.fround(0.1), 'the caller\'s weights are not modified');

  assert.throws(() => new NativeDenseTrainer({ ...layout, inputs: 0 }, TFJS_ADAM), /layout\.inputs must be an integer in 1…4294967295, got 0/);
  assert.throws(() => new NativeDenseTrainer({ ...layout, hiddenBias: 1.5 }, TFJS_ADAM), /layout\.hiddenBias must be an integer in 0…4294967295, got 1\.5/);
  assert.throws(() => new NativeDenseTrainer({ ...layout, size: 29 }, TFJS_ADAM), /the head kernel \(8 weights at 22\) does not fit in 29 weights/);
  assert.throws(() => new NativeDenseTrainer({ ...layout, hiddenBias: 16 }, TFJS_ADAM), /the hidden kernel \(12 weights at 6\) overlaps the hidden bias at 16/);
  assert.throws(() => new NativeDenseTrainer(layout, { ...TFJS_ADAM, beta2: 1 }), /adam needs 0 ≤ beta1, beta2 < 1 and a finite epsilon > 0/);
  await assertRejects(() => t.train(w, { ...input(), rows: 0 }), /rows, epochs and batchSize must be positive integers, got 0, 2, 2/);
  await assertRejects(() => t.train(w, { ...input(), batchSize: 2.5 }), /rows, epochs and batchSize must be positive integers, got 5, 2, 2\.5/);
  await assertRejects(() => t.train(w, { ...input(), learningRate: NaN }), /learningRate must be a positive finite number, got NaN/);
  await assertRejects(() => t.train(new Float32Array(29), input()), /weights have 29 values, the layout needs 30/);
  await assertRejects(() => t.train(w, { ...input(), x: new Float32Array(14) }), /train input sizes do not match 5 rows × 3 inputs → 2 outputs over 2 epochs/);
  // forward: train()'s forward pass, so a trained model's outputs match its training loss.
  const trained = await t.train(w, { ...input(), epochs: 1, order: Uint32Array.from({ length: rows }, (_, i) => i), batchSize: rows });
  const y = t.forward(trained.weights, input().x, rows);
  assert.is(y.length, rows * 2);
  const after = await t.train(trained.weights, { ...input(), epochs: 1, order: Uint32Array.from({ length: rows }, (_, i) => i), batchSize: rows, learningRate: 1e-30 });
  const mse = y.reduce((sum, v) => sum + (v - Math.fround(0.1)) ** 2, 0) / y.length;
  assert.ok(Math.abs(after.epochLosses[0]! - mse) <= 1e-6 * mse, `forward's MSE ${mse} vs train()'s loss ${after.epochLosses[0]}`);
  assert.throws(() => t.forward(w, input().x, 0), /rows must be a positive integer, got 0/);
  assert.throws(() => t.forward(new Float32Array(29), input().x, rows), /weights have 29 values, the layout needs 30/);
  assert.throws(() => t.forward(w, new Float32Array(14), rows), /x has 14 values, not 5 rows × 3 inputs/);
  t.dispose();
  assert.throws(() => t.forward(w, input().x, rows), /the native dense trainer was disposed/);
  assert.throws(() => t.resetOptimizer(), /the native dense trainer was disposed/);
  await assertRejects(() => t.train(w, input()), /the native dense trainer was disposed/);
});

test('the addon re-checks types, sizes and every row index itself', async () => {
  const { NativeDenseTrainer: Raw } = loadAddon();
  const adam = { ...TFJS_ADAM };
  const l = { ...layout } as unknown as Record<string, number>;
  assert.throws(() => new Raw(undefined as unknown as Record<string, number>, adam), /layout must be an object/);
  assert.throws(() => new Raw(l, 7 as unknown as Record<string, number>), /adam must be an object/);
  assert.throws(() => new Raw({ ...l, outputs: '2' as unknown as number }, adam), /layout\.outputs must be a number/);
  assert.throws(() => new Raw(l, { ...adam, epsilon: undefined as unknown as number }), /adam\.epsilon must be a number/);
  assert.throws(() => new Raw({ ...l, size: 10 }, adam), /dense layout: a hidden-layer matrix does not fit in 10 weights/);
  assert.throws(() => new Raw({ ...l, size: 5 }, adam), /dense layout: the linear kernel does not fit in 5 weights/);
  assert.throws(() => new Raw({ ...l, inputs: 0 }, adam), /dense layout needs at least one input and one output/);
  assert.throws(() => new Raw({ ...l, headKernel: 0 }, adam), /dense layout: weight blocks overlap/);
  assert.throws(() => new Raw(l, { ...adam, beta1: -0.1 }), /Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0/);

  const raw = new Raw(l, adam);
  const w = new Float32Array(30);
  const { x, t, order } = input();
  const call = (args: unknown[]) => (raw.train as (...a: unknown[]) => Promise<unknown>)(...args);
  assert.throws(() => call([Array.from(w), x, t, order, 5, 2, 2, 0.01]), /weights must be a Float32Array/);
  assert.throws(() => call([w, new Float64Array(15), t, order, 5, 2, 2, 0.01]), /x must be a Float32Array/);
  assert.throws(() => call([w, x, t, Int32Array.from(order), 5, 2, 2, 0.01]), /order must be a Uint32Array/);
  assert.throws(() => call([w, x, t, order, '5', 2, 2, 0.01]), /rows must be a number/);
  assert.throws(() => call([w, x, t, order, 5, 2, 2]), /learningRate must be a number/);
  assert.throws(() => call([w, x, t, order, 0, 2, 2, 0.01]), /rows, epochs and batchSize must be positive/);
  assert.throws(() => call([w, x, t, order, 5, 2, 2, Infinity]), /learningRate must be a positive finite number/);
  assert.throws(() => call([w, x, t.subarray(1), order, 5, 2, 2, 0.01]), /train input sizes do not match 5 rows × 3 inputs → 2 outputs over 2 epochs/);
  assert.throws(() => call([new Float32Array(31), x, t, order, 5, 2, 2, 0.01]), /weights have 31 values, the layout needs 30/);
  // A hostile order would make C++ read past x: refused before any row is read.
  const bad = order.slice();
  bad[7] = 5;
  assert.throws(() => call([w, x, t, bad, 5, 2, 2, 0.01]), /order\[7\] = 5 is not a row index below 5/);

  const forward = (args: unknown[]) => (raw.forward as (...a: unknown[]) => Float32Array)(...args);
  assert.is(forward([w, x, 5]).length, 10);
  assert.throws(() => forward([Array.from(w), x, 5]), /weights must be a Float32Array/);
  assert.throws(() => forward([w, new Float64Array(15), 5]), /x must be a Float32Array/);
  assert.throws(() => forward([w, x]), /rows must be a number/);
  assert.throws(() => forward([new Float32Array(31), x, 5]), /weights have 31 values, the layout needs 30/);
  assert.throws(() => forward([w, x, 6]), /x has 15 values, not 6 rows × 3 inputs \(rows > 0\)/);
  assert.throws(() => forward([w, x, 0]), /x has 15 values, not 0 rows × 3 inputs \(rows > 0\)/);
  // A huge row count is refused by the size check before any output is allocated.
  assert.throws(() => forward([w, x, 2 ** 32 - 1]), /x has 15 values, not 4294967295 rows × 3 inputs/);

  // One train() at a time per trainer: Adam's moments are its state.
  const big = 20_000;
  const running = call([w, new Float32Array(big * 3), new Float32Array(big * 2), new Uint32Array(big * 2), big, 2, 1, 0.01]);
  assert.throws(() => call([w, x, t, order, 5, 2, 2, 0.01]), /this trainer is already training; await the running train\(\) first/);
  assert.throws(() => raw.resetOptimizer(), /cannot reset the optimizer while train\(\) runs/);
  // forward() reads only the layout, so it may run beside a train().
  assert.is(forward([w, x, 5]).length, 10);
  await running;
  raw.resetOptimizer();
  await call([w, x, t, order, 5, 2, 2, 0.01]);
});

test.run();
