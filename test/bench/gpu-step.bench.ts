import { defaultCandidates, loadBackends } from '../../agent/trainer/backends.js';
import { fusedEngine, TFJS_ADAM, type DenseLayout, type DenseTrainInput, type FusedDenseTrainer } from '../../agent/trainer/fused-step.js';
import { UPDATE_WEIGHTS } from '../../agent/trainer/gpu/dense-shaders.js';
import { GpuDenseTrainer } from '../../agent/trainer/gpu/dense-trainer.js';
import { seededRandom } from '../../agent/trainer/rng.js';
import { NativeDenseTrainer } from '../../native/dense-trainer.js';

/**
 * gpu-step: where the fused WebGPU step's time goes, beside the native C++ step on the same
 * inputs (scripts/gpu-check.sh runs it on the GPU host). For the default job's shapes (2 channels
 * × 3,164 windows = 6,328 rows, lookback 30 → 30 inputs, horizon 5 → 5 outputs) and two variants:
 *
 * - `train_ms`: one FusedDenseTrainer.train() of 3 and of 30 epochs; from the pair, the per-call
 *   fixed cost (uploads, submission, readback) and the cost of one step.
 * - `forward_backward_us` / `update_us`: one step's time of each kernel alone, from 300 steps
 *   of only that kernel in one submission (GPU only).
 * - `roundtrip_ms`: an empty submission and onSubmittedWorkDone.
 *
 * The data are random (the kernels' time does not depend on values); the tests check the maths.
 * Without a WebGPU adapter it prints the reason (ICOSFL_WEBGPU_SOFTWARE=1 allows llvmpipe).
 */
const ROWS = 6328;
const INPUTS = 30;
const OUTPUTS = 5;
const JOBS = [
  { label: 'default', hidden: 64, batch: 256 },
  { label: 'batch-4096', hidden: 64, batch: 4096 },
  { label: 'hidden-512', hidden: 512, batch: 256 },
];
const progress = (msg: string) => process.stderr.write(`[gpu-step] ${msg}\n`);

function layoutFor(hidden: number): DenseLayout {
  const linearKernel = 0;
  const hiddenKernel = INPUTS * OUTPUTS;
  const hiddenBias = hiddenKernel + INPUTS * hidden;
  const headKernel = hiddenBias + hidden;
  return { inputs: INPUTS, outputs: OUTPUTS, hidden, linearKernel, hiddenKernel, hiddenBias, headKernel, size: headKernel + hidden * OUTPUTS };
}

function inputFor(epochs: number, batchSize: number): DenseTrainInput {
  const random = seededRandom(7);
  const x = Float32Array.from({ length: ROWS * INPUTS }, () => random() * 2 - 1);
  const t = Float32Array.from({ length: ROWS * OUTPUTS }, () => random() * 2 - 1);
  const order = new Uint32Array(ROWS * epochs);
  for (let e = 0; e < epochs; e++) for (let r = 0; r < ROWS; r++) order[e * ROWS + r] = (r * 7919 + e) % ROWS;
  return { x, t, rows: ROWS, order, epochs, batchSize, learningRate: 1e-3 };
}

function initialWeights(layout: DenseLayout): Float32Array {
  const random = seededRandom(3);
  return Float32Array.from({ length: layout.size }, () => (random() - 0.5) * 0.2);
}

async function timeTrain(trainer: FusedDenseTrainer, layout: DenseLayout, epochs: number, batch: number): Promise<number> {
  const input = inputFor(epochs, batch);
  const started = performance.now();
  await trainer.train(initialWeights(layout), input);
  return performance.now() - started;
}

/** 3- and 30-epoch calls (after a warm-up) → per-call fixed cost and per-step cost. */
async function trainCosts(trainer: FusedDenseTrainer, layout: DenseLayout, batch: number) {
  await timeTrain(trainer, layout, 1, batch);
  const three = Math.min(await timeTrain(trainer, layout, 3, batch), await timeTrain(trainer, layout, 3, batch));
  const thirty = await timeTrain(trainer, layout, 30, batch);
  const steps = Math.ceil(ROWS / batch);
  const perStep = (thirty - three) / (27 * steps);
  return {
    train_ms: { epochs_3: round(three), epochs_30: round(thirty) },
    step_us: round(1000 * perStep),
    fixed_ms: round(three - 3 * steps * perStep),
    samples_per_s_3_epochs: Math.round((ROWS / 2) * 3 / (three / 1000)),
  };
}

/**
 * One kernel alone, `steps` times in one submission. Reaches into the trainer's pipelines and
 * buffers (private: this is a profiler, not an API) after a train() has created them.
 */
async function kernelAlone(trainer: GpuDenseTrainer, device: GPUDevice, kernel: 'forwardBackward' | 'update', groups: [number, number], steps: number): Promise<number> {
  const t = trainer as unknown as {
    pipelines: Record<'forwardBackward' | 'update', GPUComputePipeline>;
    weights: GPUBuffer;
    moments: GPUBuffer;
    owned: Map<string, GPUBuffer>;
    bindGroup(storage: GPUBuffer[], steps: GPUBuffer): GPUBindGroup;
  };
  const b = (name: string) => t.owned.get(name)!;
  const bindGroup = t.bindGroup([t.weights, t.moments, b('x'), b('t'), b('order'), b('scratch'), b('losses')], b('steps'));
  const started = performance.now();
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(t.pipelines[kernel]);
  for (let s = 0; s < steps; s++) {
    pass.setBindGroup(0, bindGroup, [0]);
    pass.dispatchWorkgroups(...groups);
  }
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  return (1000 * (performance.now() - started)) / steps;
}

async function roundtrip(device: GPUDevice): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    device.queue.submit([device.createCommandEncoder().finish()]);
    await device.queue.onSubmittedWorkDone();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

const round = (x: number) => Number(x.toFixed(3));

const webgpu = defaultCandidates({ allowSoftwareAdapter: process.env.ICOSFL_WEBGPU_SOFTWARE === '1' }).find((c) => c.name === 'webgpu')!;
const [status] = await loadBackends([webgpu]);
const result: Record<string, unknown> = { bench: 'gpu-step', rows: ROWS, inputs: INPUTS, outputs: OUTPUTS };
if (!status!.loaded) {
  progress(`webgpu not loaded: ${status!.reason}`);
  result.webgpu = { loaded: false, reason: status!.reason };
} else {
  await webgpu.activate();
  const engine = fusedEngine();
  if (engine?.kind !== 'webgpu') throw new Error('webgpu activated without a WebGPU engine');
  result.device = status!.device;
  result.roundtrip_ms = round(await roundtrip(engine.device));
  const jobs: Record<string, unknown> = {};
  for (const job of JOBS) {
    const layout = layoutFor(job.hidden);
    const gpu = new GpuDenseTrainer(engine.device, layout, TFJS_ADAM);
    const native = new NativeDenseTrainer(layout, TFJS_ADAM);
    const gpuCosts = await trainCosts(gpu, layout, job.batch);
    const updateGroups = Math.ceil((layout.size + 1) / UPDATE_WEIGHTS);
    const kernels = {
      forward_backward_us: round(await kernelAlone(gpu, engine.device, 'forwardBackward', [job.batch, 1], 300)),
      update_us: round(await kernelAlone(gpu, engine.device, 'update', [Math.min(updateGroups, 65535), Math.ceil(updateGroups / 65535)], 300)),
    };
    const nativeCosts = await trainCosts(native, layout, job.batch);
    jobs[job.label] = { ...job, weights: layout.size, webgpu: { ...gpuCosts, ...kernels }, native: nativeCosts };
    progress(`${job.label}: ${JSON.stringify(jobs[job.label])}`);
    gpu.dispose();
    native.dispose();
  }
  result.jobs = jobs;
}
console.log(JSON.stringify(result));
process.exit(0);
