import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCandidates, loadBackends, selectBackend, type Candidate } from '../../../agent/trainer/backends.js';
import { parseTrainerConfig } from '../../../agent/trainer/config.js';
import { Forecaster } from '../../../agent/trainer/forecaster.js';
import { fusedEngine, TFJS_ADAM } from '../../../agent/trainer/fused-step.js';
import { sharedOutputs, UPDATE_WEIGHTS } from '../../../agent/trainer/gpu/dense-shaders.js';
import { fitsFusedStep, GpuDenseTrainer } from '../../../agent/trainer/gpu/dense-trainer.js';
import type { ModelSpec } from '../../../agent/trainer/model.js';
import { tf } from '../../../agent/trainer/tf.js';
import { sliceWindows } from '../../../agent/trainer/windows.js';
import { assertSameTraining, countCppForwards, maxAbsDiff, nabTrainingData, trainOn, type TrainCall } from '../../helpers/fused-step.js';
import { tempDir } from '../../helpers/paths.js';
import { assertRejects } from '../../helpers/rejects.js';

/**
 * The fused WebGPU training step (agent/trainer/gpu/) on a real WebGPU implementation: Dawn over
 * Mesa's llvmpipe Vulkan driver (.ci/run installs Mesa >= 25 from backports). llvmpipe runs the
 * same WGSL a GPU runs, so these tests check the kernels' maths against tfjs; speed is measured
 * on a real GPU by scripts/gpu-check.sh, never here.
 */
const software = defaultCandidates({ allowSoftwareAdapter: true });
const byName = (cs: Candidate[], name: string) => cs.find((c) => c.name === name)!;
const statuses = await loadBackends(software.filter((c) => c.name === 'webgpu' || c.name === 'cpu'));
const webgpuStatus = statuses.find((s) => s.name === 'webgpu')!;

const tmp = tempDir('icosfl-gpu-dense-');
test.after(() => tmp.cleanup());
const data = nabTrainingData(tmp.dir);
const { train, validation, scaler } = data;

/** Weights after the same training calls on tfjs's CPU backend and on the fused GPU step. */
async function trainBoth(spec: ModelSpec, calls: TrainCall[]) {
  return { cpu: await trainOn(byName(software, 'cpu'), spec, data, calls), gpu: await trainOn(byName(software, 'webgpu'), spec, data, calls) };
}

test('webgpu loads on the software adapter when allowed, and is refused by default', async () => {
  assert.ok(webgpuStatus.loaded, `webgpu: ${webgpuStatus.reason} (needs Mesa >= 25 lavapipe, see .ci/run)`);
  assert.match(webgpuStatus.device!, /llvmpipe.*; forward passes in C\+\+, LSTMs on (wasm|cpu)/);
  const [refused] = await loadBackends(defaultCandidates({ allowSoftwareAdapter: false }).filter((c) => c.name === 'webgpu'));
  assert.is(refused!.loaded, false);
  assert.match(refused!.reason!, /only a software WebGPU adapter \(.*llvmpipe.*\).*ICOSFL_WEBGPU_SOFTWARE=1/);
});

test('fused MLP step = tfjs step: same weights after epochs, a partial batch, a second call and an optimizer reset', async () => {
  const spec: ModelSpec = { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 64, channelIndependent: true };
  // rows = 2 × train.n; batch 97 never divides it, so every epoch ends on a partial batch.
  // Batch 600 is above update's 256 invocations, so each of them sums several rows.
  const { cpu, gpu } = await trainBoth(spec, [
    { epochs: 2, batchSize: 97, seed: 1 },
    { epochs: 1, batchSize: 256, seed: 2 },
    { epochs: 1, batchSize: 600, seed: 5 },
    { epochs: 1, batchSize: 64, seed: 3, reset: true },
  ]);
  assertSameTraining(cpu, gpu, 'mlp');
  // Training did something: the weights left their zero-initialised output layers.
  assert.ok(gpu.losses[3]! < gpu.losses[0]!, `losses ${gpu.losses}`);
});

test('a model past 65,535 update workgroups trains on the 2-D grid and matches tfjs', async () => {
  // Joint channels and 4,096 hidden units: 291,416 weights, 72,855 update workgroups.
  const spec: ModelSpec = { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 4096, channelIndependent: false };
  const probe = new Forecaster(spec, { seed: 11, learningRate: 0.003, scaler });
  assert.ok(Math.ceil((probe.weightCount + 1) / UPDATE_WEIGHTS) > 65_535, `${probe.weightCount} weights`);
  const initial = probe.getWeights();
  probe.dispose();
  const small = { ...data, train: sliceWindows(train, 0, 64), validation: sliceWindows(validation, 0, 64) };
  const calls = [{ epochs: 2, batchSize: 32, seed: 6 }];
  const cpu = await trainOn(byName(software, 'cpu'), spec, small, calls);
  const gpu = await trainOn(byName(software, 'webgpu'), spec, small, calls);
  // Weights past the first grid row (65,535 workgroups × 4) moved, and as tfjs moved them.
  const tail = 65_535 * UPDATE_WEIGHTS;
  const moved = maxAbsDiff(initial.subarray(tail), gpu.weights.subarray(tail));
  assert.ok(moved > 1e-3, `weights past the first grid row moved by ${moved}`);
  assert.ok(maxAbsDiff(cpu.weights, gpu.weights) < 0.01 * moved, `max |Δw| ${maxAbsDiff(cpu.weights, gpu.weights)}`);
  // Sums over 4,096 hidden units: float summation order shows at 2e-5 of the loss here.
  assert.ok(Math.abs(cpu.losses[0]! - gpu.losses[0]!) < 1e-4 * cpu.losses[0]!, `loss ${cpu.losses[0]} vs ${gpu.losses[0]}`);
});

/** A hand-built MLP layout over 30 inputs and 5 outputs (the default job's shape), as denseLayout lays it out. */
function mlpLayout(hidden: number) {
  return { inputs: 30, outputs: 5, hidden, linearKernel: 0, hiddenKernel: 150, hiddenBias: 150 + 30 * hidden, headKernel: 150 + 31 * hidden, size: 150 + 36 * hidden };
}

test('a batch whose GPU scratch exceeds the storage binding limit is refused by name, before any GPU work', async () => {
  const device = await gpuDevice();
  const hidden = 4096;
  const layout = mlpLayout(hidden);
  const trainer = new GpuDenseTrainer(device, layout, TFJS_ADAM);
  // Per row: activations and back-propagated errors (2 × 4,096), the output error (5), the inputs (30), the loss (1).
  const rows = 4096;
  const bytes = 4 * rows * (2 * hidden + 5 + 30 + 1);
  assert.ok(bytes > device.limits.maxStorageBufferBindingSize, `llvmpipe's limit is ${device.limits.maxStorageBufferBindingSize}`);
  const input = { x: new Float32Array(rows * 30), t: new Float32Array(rows * 5), rows, order: Uint32Array.from({ length: rows }, (_, i) => i), epochs: 1, batchSize: rows, learningRate: 0.001 };
  await assertRejects(() => trainer.train(new Float32Array(layout.size), input), new RegExp(`batch size 4096 needs ${bytes} bytes of GPU scratch, above the device's ${device.limits.maxStorageBufferBindingSize}-byte storage binding limit; use a smaller batch_size`));
  trainer.dispose();
});

/** The webgpu engine's device (llvmpipe here), activating the backend first. */
async function gpuDevice(): Promise<GPUDevice> {
  await byName(software, 'webgpu').activate();
  const engine = fusedEngine();
  assert.is(engine?.kind, 'webgpu');
  return (engine as { device: GPUDevice }).device;
}

test('training rows too large for one GPU buffer are refused by name, before any GPU work', async () => {
  const device = await gpuDevice();
  const limit = device.limits.maxStorageBufferBindingSize;
  const layout = { inputs: 30, outputs: 5, hidden: 0, linearKernel: 0, hiddenKernel: 150, hiddenBias: 150, headKernel: 150, size: 150 };
  const trainer = new GpuDenseTrainer(device, layout, TFJS_ADAM);
  const rows = Math.floor(limit / (4 * 30)) + 1; // one row past the limit: 30 inputs × 4 bytes each
  const input = { x: new Float32Array(rows * 30), t: new Float32Array(rows * 5), rows, order: new Uint32Array(rows), epochs: 1, batchSize: 256, learningRate: 0.001 };
  await assertRejects(
    () => trainer.train(new Float32Array(layout.size), input),
    new RegExp(`${rows} training rows × 30 inputs → 5 outputs need ${rows * 120} bytes in one GPU buffer, above the device's ${limit}-byte storage binding limit; train on fewer windows`),
  );
  trainer.dispose();
});

test('a call split into several submissions trains exactly as one submission does', async () => {
  const device = await gpuDevice();
  const hidden = 16;
  const layout = mlpLayout(hidden);
  let seed = 7; // a small LCG: the test needs fixed, not good, randomness
  const next = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31) - 0.5;
  const rows = 300;
  const epochs = 5;
  const initial = Float32Array.from({ length: layout.size }, () => 0.2 * next());
  const order = new Uint32Array(rows * epochs);
  for (let e = 0; e < epochs; e++) for (let r = 0; r < rows; r++) order[e * rows + r] = (r * 7 + e * 13) % rows;
  const input = { x: Float32Array.from({ length: rows * 30 }, next), t: Float32Array.from({ length: rows * 5 }, next), rows, order, epochs, batchSize: 64, learningRate: 0.01 };
  const once = new GpuDenseTrainer(device, layout, TFJS_ADAM);
  // 5 steps an epoch, at most 12 a submission: epochs in submissions of 2, 2 and 1.
  const split = new GpuDenseTrainer(device, layout, TFJS_ADAM, { maxStepsPerSubmission: 12 });
  for (let call = 0; call < 2; call++) { // the second call continues Adam's step count in both
    const a = await once.train(initial, input);
    const b = await split.train(initial, input);
    assert.equal(Array.from(b.weights), Array.from(a.weights));
    assert.equal(Array.from(b.epochLosses), Array.from(a.epochLosses));
    assert.ok(maxAbsDiff(initial, a.weights) > 1e-3, 'training moved the weights');
  }
  once.dispose();
  split.dispose();
});

test('wide MLP: the output sums by shares and, past 16 outputs, by one invocation each = tfjs step', async () => {
  const wide = { kind: 'mlp', lookback: 30, channels: 2, hiddenUnits: 256 } as const;
  // 5 outputs over 30 + 256 terms: shares. Joint channels 9 steps ahead: 18 outputs, no shares.
  const cases = [
    { spec: { ...wide, horizon: 5, channelIndependent: true }, inputs: 30, shares: 5 * 64 },
    { spec: { ...wide, horizon: 9, channelIndependent: false }, inputs: 60, shares: 0 },
  ];
  const device = await gpuDevice();
  for (const { spec, inputs, shares } of cases) {
    const layout = { inputs, outputs: spec.channelIndependent ? spec.horizon : 2 * spec.horizon, hidden: 256, linearKernel: 0, hiddenKernel: 0, hiddenBias: 0, headKernel: 0, size: 0 };
    assert.is(sharedOutputs(layout, device.limits.maxComputeWorkgroupStorageSize), shares);
    const windows = spec.horizon === 5 ? data : nabTrainingData(tmp.dir, spec.horizon);
    const calls = [{ epochs: 2, batchSize: 97, seed: 8 }];
    const cpu = await trainOn(byName(software, 'cpu'), spec, windows, calls);
    const gpu = await trainOn(byName(software, 'webgpu'), spec, windows, calls);
    assertSameTraining(cpu, gpu, `mlp, ${layout.outputs} outputs`);
  }
});

test('fused linear step over joint channels = tfjs step', async () => {
  const spec: ModelSpec = { kind: 'linear', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 1, channelIndependent: false };
  const { cpu, gpu } = await trainBoth(spec, [{ epochs: 3, batchSize: 50, seed: 4 }]);
  const diff = maxAbsDiff(cpu.weights, gpu.weights);
  assert.ok(diff < 1e-5, `max |Δw| ${diff}`);
  assert.ok(Math.abs(cpu.losses[0]! - gpu.losses[0]!) < 1e-4 * cpu.losses[0]!);
});

test('a model fits the GPU step while its Adam moments and a row in workgroup memory fit the limits', () => {
  const layout = (size: number, hidden = 0) => ({ inputs: 30, outputs: 5, hidden, linearKernel: 0, hiddenKernel: 0, hiddenBias: 0, headKernel: 0, size });
  const limits = { maxStorageBufferBindingSize: 134_217_728, maxComputeWorkgroupStorageSize: 16_384 }; // WebGPU's defaults
  assert.ok(fitsFusedStep(layout(16_777_216), limits)); // 8 bytes a weight
  assert.not.ok(fitsFusedStep(layout(16_777_217), limits));
  assert.ok(fitsFusedStep(layout(1000, 4061), limits)); // 4 × (30 + 5 + 4,061) = 16,384 bytes
  assert.not.ok(fitsFusedStep(layout(1000, 4062), limits));
  // The output sums' shares (5 × 64 floats) are used where they fit beside the row, else not.
  assert.is(sharedOutputs(layout(1000, 3741), limits.maxComputeWorkgroupStorageSize), 5 * 64); // 4 × (30 + 5 + 3,741 + 320) = 16,384
  assert.is(sharedOutputs(layout(1000, 3742), limits.maxComputeWorkgroupStorageSize), 0);
  assert.is(sharedOutputs(layout(1000, 225), limits.maxComputeWorkgroupStorageSize), 0); // 30 + 225 terms: the loop is faster
  assert.is(sharedOutputs(layout(1000, 226), limits.maxComputeWorkgroupStorageSize), 5 * 64);
  assert.is(sharedOutputs({ ...layout(1000, 1000), outputs: 17 }, limits.maxComputeWorkgroupStorageSize), 0); // past 16 outputs
});

test('an LSTM has no fused step: with webgpu active it trains on tfjs (CPU side) and says nothing breaks', async () => {
  await byName(software, 'webgpu').activate();
  assert.is(fusedEngine()?.kind, 'webgpu');
  const f = new Forecaster({ kind: 'lstm', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 4, channelIndependent: true }, { seed: 1, learningRate: 0.003, scaler });
  const before = f.loss(validation);
  const r = await f.train(train, { epochs: 1, batchSize: 256, seed: 1 });
  assert.ok(Number.isFinite(r.loss) && f.loss(validation) !== before);
  f.dispose();
});

test('forcing webgpu selects it: training on the GPU, dense forward passes in C++; tensors do not leak', async () => {
  const config = parseTrainerConfig({ backend: 'webgpu', batch_size: 64, calibration_batches: 2 });
  const { chosen } = await selectBackend(config, { kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 16, channelIndependent: true }, {
    candidates: defaultCandidates({ allowSoftwareAdapter: true }),
  });
  assert.is(chosen, 'webgpu');
  assert.is(fusedEngine()?.kind, 'webgpu');
  assert.ok(['wasm', 'cpu'].includes(tf.getBackend()), tf.getBackend());
  const f = new Forecaster({ kind: 'mlp', lookback: 30, horizon: 5, channels: 2, hiddenUnits: 16, channelIndependent: true }, { seed: 1, learningRate: 0.003, scaler });
  await f.train(train, { epochs: 1, batchSize: 64, seed: 0 });
  const tensors = tf.memory().numTensors;
  const { calls: cppForwards } = await countCppForwards(async () => {
    for (let i = 1; i <= 10; i++) {
      await f.train(train, { epochs: 1, batchSize: 64, seed: i });
      f.predict(validation.x, validation.n);
    }
  });
  assert.is(cppForwards, 10);
  assert.is(tf.memory().numTensors, tensors);
  // One workgroup per batch row: a batch above WebGPU's per-dimension limit is refused by name.
  await assertRejects(() => f.train(train, { epochs: 1, batchSize: 70_000, seed: 1 }), /batch size 70000 is above the 65535 rows one GPU step dispatches/);
  f.dispose();
  // Any other backend clears the fused engine.
  await byName(software, 'cpu').activate();
  assert.is(fusedEngine(), undefined);
});

test.run();
