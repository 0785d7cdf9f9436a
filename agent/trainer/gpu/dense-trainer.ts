import { IcosflError } from '../../../common/errors.js';
import type { AdamConstants, DenseLayout, DenseTrainInput, FusedDenseTrainer } from '../fused-step.js';
import { denseStepShader, STEP_UNIFORM_BYTES, scratchLayout, UPDATE_WEIGHTS } from './dense-shaders.js';

/** WebGPU's guaranteed maxComputeWorkgroupsPerDimension: the most batch rows (workgroups) one dispatch covers. */
const MAX_WORKGROUPS = 65535;

type StepLimits = Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxComputeWorkgroupStorageSize'>;

/**
 * Whether the fused step can train this layout on a device with these limits; if not, the model
 * trains on tfjs instead. Two things bound it:
 * - Adam's moments (2 floats a weight) are one storage binding;
 * - forwardBackward keeps a row's inputs, outputs and hidden activations in workgroup memory
 *   (4 bytes each; WebGPU's default 16 KiB holds about 4,000 hidden units, backends.ts asks
 *   for the adapter's own limit). The output sums' shares are used only where they fit too.
 */
export function fitsFusedStep(layout: DenseLayout, limits: StepLimits): boolean {
  return 8 * layout.size <= limits.maxStorageBufferBindingSize && 4 * (layout.inputs + layout.outputs + layout.hidden) <= limits.maxComputeWorkgroupStorageSize;
}

/** update's grid: one workgroup per UPDATE_WEIGHTS weights (and the loss), folded into 2-D past 65,535. */
function updateGrid(size: number): [number, number] {
  const groups = Math.ceil((size + 1) / UPDATE_WEIGHTS);
  const x = Math.min(groups, MAX_WORKGROUPS);
  return [x, Math.ceil(groups / x)];
}

/**
 * Trains a dense forecaster's flat weight vector on a WebGPU device with the fused step of
 * dense-shaders.ts. It owns every GPU buffer it creates (weights, Adam moments, the uploaded
 * rows, scratch) and frees them in dispose(); buffers grow to the largest call seen and are
 * reused, so a daemon's rounds allocate nothing new once warm.
 *
 * One train() call = one submission (or a few in a row for very long calls, see
 * maxStepsPerSubmission): all epochs' steps are encoded into one compute pass, and the weights
 * and per-epoch losses are read back once at the end (a readback is a full GPU sync).
 */
export class GpuDenseTrainer implements FusedDenseTrainer {
  private readonly device: GPUDevice;
  private readonly layout: DenseLayout;
  private readonly adam: AdamConstants;
  private readonly bindLayout: GPUBindGroupLayout;
  private pipelines: { forwardBackward: GPUComputePipeline; update: GPUComputePipeline } | undefined;
  private maxBatch = 0;
  private readonly weights: GPUBuffer;
  private readonly moments: GPUBuffer;
  private readonly owned = new Map<string, GPUBuffer>();
  /** Adam's step count t; moments and t restart together (resetOptimizer). */
  private adamStep = 0;

  /**
   * Steps encoded into one submission (whole epochs, at least one). A train() call with more is
   * split into several submissions in a row, so its step constants (256 bytes a step) and its
   * epochs' row orders stay within buffer limits however many epochs a caller asks for.
   */
  private readonly maxStepsPerSubmission: number;

  constructor(device: GPUDevice, layout: DenseLayout, adam: AdamConstants, opts: { maxStepsPerSubmission?: number } = {}) {
    this.device = device;
    this.maxStepsPerSubmission = opts.maxStepsPerSubmission ?? 65_536;
    this.layout = layout;
    this.adam = adam;
    const storage = (readOnly: boolean): GPUBindGroupLayoutEntry['buffer'] => ({ type: readOnly ? 'read-only-storage' : 'storage' });
    this.bindLayout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: storage(false) },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: storage(false) },
        { binding: 2, visibility: GPUShaderStage.COMPUTE, buffer: storage(true) },
        { binding: 3, visibility: GPUShaderStage.COMPUTE, buffer: storage(true) },
        { binding: 4, visibility: GPUShaderStage.COMPUTE, buffer: storage(true) },
        { binding: 5, visibility: GPUShaderStage.COMPUTE, buffer: storage(false) },
        { binding: 6, visibility: GPUShaderStage.COMPUTE, buffer: storage(false) },
        { binding: 7, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: 32 } },
      ],
    });
    this.weights = device.createBuffer({ size: 4 * layout.size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    this.moments = device.createBuffer({ size: 8 * layout.size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  }

  /** Forget Adam's moments and step count (Forecaster.resetOptimizer). New buffers start zeroed. */
  resetOptimizer(): void {
    this.device.queue.writeBuffer(this.moments, 0, new Float32Array(2 * this.layout.size));
    this.adamStep = 0;
  }

  /** A buffer that only grows: reused across calls, replaced (and the old one destroyed) when too small. */
  private buffer(name: string, bytes: number, usage: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const old = this.owned.get(name);
    if (old && old.size >= size) return old;
    old?.destroy();
    const b = this.device.createBuffer({ size, usage });
    this.owned.set(name, b);
    return b;
  }

  /** Shaders depend on the largest batch (scratch arrays); rebuilt only when it grows. */
  private async ensurePipelines(batch: number): Promise<NonNullable<GpuDenseTrainer['pipelines']>> {
    if (this.pipelines && batch <= this.maxBatch) return this.pipelines;
    this.maxBatch = Math.max(batch, this.maxBatch);
    const pipelines = await this.inErrorScope(() => {
      const module = this.device.createShaderModule({ code: denseStepShader(this.layout, this.maxBatch, this.adam, this.device.limits.maxComputeWorkgroupStorageSize) });
      const pipelineLayout = this.device.createPipelineLayout({ bindGroupLayouts: [this.bindLayout] });
      const make = (entryPoint: string) => this.device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint } });
      return { forwardBackward: make('forwardBackward'), update: make('update') };
    });
    const error = await this.device.popErrorScope();
    if (error) throw new IcosflError('BACKEND_UNAVAILABLE', `WebGPU rejected the fused training kernels: ${error.message}`);
    this.pipelines = pipelines;
    return pipelines;
  }

  /** Trains from `initial` weights; returns the new weights and the mean batch loss of each epoch. */
  async train(initial: Float32Array, input: DenseTrainInput): Promise<{ weights: Float32Array; epochLosses: Float64Array }> {
    const { inputs: I, outputs: O, size: P } = this.layout;
    const { rows, epochs, batchSize } = input;
    const bindingLimit = this.device.limits.maxStorageBufferBindingSize;
    if (!fitsFusedStep(this.layout, this.device.limits)) throw new RangeError(`this model (${P} weights, ${this.layout.hidden} hidden units) exceeds the GPU's storage binding or workgroup memory limits`);
    if (initial.length !== P) throw new RangeError(`weights have ${initial.length} values, the layout needs ${P}`);
    if (input.x.length !== rows * I || input.t.length !== rows * O || input.order.length !== rows * epochs) {
      throw new RangeError(`train input sizes do not match ${rows} rows × ${I} inputs → ${O} outputs over ${epochs} epochs`);
    }
    if (batchSize > MAX_WORKGROUPS) throw new RangeError(`batch size ${batchSize} is above the ${MAX_WORKGROUPS} rows one GPU step dispatches`);
    // Every row stays on the GPU for the whole call (each epoch shuffles across all of them), so
    // inputs and targets must each fit one storage binding.
    const inputBytes = Math.max(input.x.byteLength, input.t.byteLength);
    if (inputBytes > bindingLimit) {
      throw new RangeError(`${rows} training rows × ${I} inputs → ${O} outputs need ${inputBytes} bytes in one GPU buffer, above the device's ${bindingLimit}-byte storage binding limit; train on fewer windows`);
    }
    const batch = Math.min(batchSize, rows);
    const scratchBytes = 4 * scratchLayout(this.layout, Math.max(batch, this.maxBatch)).size;
    if (scratchBytes > bindingLimit) {
      throw new RangeError(`batch size ${batch} needs ${scratchBytes} bytes of GPU scratch, above the device's ${bindingLimit}-byte storage binding limit; use a smaller batch_size`);
    }
    const { forwardBackward, update } = await this.ensurePipelines(batch);
    const device = this.device;
    const U = GPUBufferUsage;
    const stepsPerEpoch = Math.ceil(rows / batch);
    // Whole epochs per submission: each step's uniform slot and each epoch's row order must fit.
    const epochsPerSubmission = Math.max(1, Math.min(epochs, Math.floor(this.maxStepsPerSubmission / stepsPerEpoch), Math.floor(bindingLimit / (4 * rows))));
    const xs = this.buffer('x', input.x.byteLength, U.STORAGE | U.COPY_DST);
    const ts = this.buffer('t', input.t.byteLength, U.STORAGE | U.COPY_DST);
    const order = this.buffer('order', 4 * rows * epochsPerSubmission, U.STORAGE | U.COPY_DST);
    const scratch = this.buffer('scratch', 4 * scratchLayout(this.layout, this.maxBatch).size, U.STORAGE);
    const losses = this.buffer('losses', 4 * epochs, U.STORAGE | U.COPY_DST | U.COPY_SRC);
    const stepBuffer = this.buffer('steps', STEP_UNIFORM_BYTES * stepsPerEpoch * epochsPerSubmission, U.UNIFORM | U.COPY_DST);
    const readWeights = this.buffer('readWeights', 4 * P, U.MAP_READ | U.COPY_DST);
    const readLosses = this.buffer('readLosses', 4 * epochs, U.MAP_READ | U.COPY_DST);
    device.queue.writeBuffer(this.weights, 0, initial);
    device.queue.writeBuffer(xs, 0, input.x);
    device.queue.writeBuffer(ts, 0, input.t);
    device.queue.writeBuffer(losses, 0, new Float32Array(epochs));
    const bindGroup = this.bindGroup([this.weights, this.moments, xs, ts, order, scratch, losses], stepBuffer);
    const [updateX, updateY] = updateGrid(P);

    await this.inErrorScope(() => {
      // The queue runs writes and submissions in order, so each submission's order and step
      // constants may overwrite the previous one's; nothing is read back until the last.
      for (let first = 0; first < epochs; first += epochsPerSubmission) {
        const count = Math.min(epochsPerSubmission, epochs - first);
        device.queue.writeBuffer(order, 0, input.order, first * rows, count * rows);
        device.queue.writeBuffer(stepBuffer, 0, this.stepConstants(first, count, rows, batch, input.learningRate));
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        for (let s = 0; s < stepsPerEpoch * count; s++) {
          pass.setBindGroup(0, bindGroup, [s * STEP_UNIFORM_BYTES]);
          pass.setPipeline(forwardBackward);
          pass.dispatchWorkgroups(Math.min(batch, rows - (s % stepsPerEpoch) * batch));
          pass.setPipeline(update);
          pass.dispatchWorkgroups(updateX, updateY);
        }
        pass.end();
        if (first + count === epochs) {
          encoder.copyBufferToBuffer(this.weights, 0, readWeights, 0, 4 * P);
          encoder.copyBufferToBuffer(losses, 0, readLosses, 0, 4 * epochs);
        }
        device.queue.submit([encoder.finish()]);
      }
    });
    await this.throwIfRejected('training step');

    await Promise.all([readWeights.mapAsync(GPUMapMode.READ, 0, 4 * P), readLosses.mapAsync(GPUMapMode.READ, 0, 4 * epochs)]);
    const weights = new Float32Array(readWeights.getMappedRange(0, 4 * P).slice(0));
    const sums = new Float32Array(readLosses.getMappedRange(0, 4 * epochs).slice(0));
    readWeights.unmap();
    readLosses.unmap();
    return { weights, epochLosses: Float64Array.from(sums, (sum) => sum / stepsPerEpoch) };
  }

  /**
   * One 256-byte uniform slot per step of epochs first … first + count − 1: its row range in the
   * submission's order buffer, its loss slot, and Adam's bias corrections for step t (float64).
   */
  private stepConstants(first: number, count: number, rows: number, batch: number, learningRate: number): ArrayBuffer {
    const { beta1, beta2 } = this.adam;
    const steps = new ArrayBuffer(STEP_UNIFORM_BYTES * Math.ceil(rows / batch) * count);
    for (let e = 0, s = 0; e < count; e++) {
      for (let start = 0; start < rows; start += batch, s++) {
        const t = ++this.adamStep;
        const u32 = new Uint32Array(steps, s * STEP_UNIFORM_BYTES, 4);
        const f = new Float32Array(steps, s * STEP_UNIFORM_BYTES + 16, 2);
        u32.set([e * rows + start, Math.min(batch, rows - start), first + e, 0]);
        f[0] = learningRate / (1 - beta1 ** t);
        f[1] = 1 / (1 - beta2 ** t);
      }
    }
    return steps;
  }

  /**
   * Runs `body` inside a pushed validation error scope, which the caller pops (to read what WebGPU
   * rejected). If `body` itself throws, the scope is popped here first, so a failed call never
   * leaves the device's scope stack unbalanced for the next one.
   */
  private async inErrorScope<T>(body: () => T): Promise<T> {
    this.device.pushErrorScope('validation');
    try {
      return body();
    } catch (err) {
      await this.device.popErrorScope();
      throw err;
    }
  }

  /** A rejected command (a limit exceeded, say) would otherwise leave the weights silently unchanged. */
  private async throwIfRejected(what: string): Promise<void> {
    const error = await this.device.popErrorScope();
    if (error) throw new IcosflError('TRAINING_FAILED', `WebGPU rejected the ${what}: ${error.message}`);
  }

  private bindGroup(storage: GPUBuffer[], steps: GPUBuffer): GPUBindGroup {
    return this.device.createBindGroup({
      layout: this.bindLayout,
      entries: [
        ...storage.map((buffer, binding) => ({ binding, resource: { buffer } })),
        { binding: storage.length, resource: { buffer: steps, size: 32 } },
      ],
    });
  }

  dispose(): void {
    for (const b of this.owned.values()) b.destroy();
    this.owned.clear();
    this.weights.destroy();
    this.moments.destroy();
    this.pipelines = undefined;
  }
}
