import type { AdamConstants, DenseLayout, DenseTrainInput, FusedDenseTrainer } from './fused-step-types.js';
import { loadAddon, type NativeDenseTrainerHandle } from './load-addon.js';

/**
 * The fused training step of the dense forecasters on the CPU, in C++ (native/src/dense-step.cpp;
 * the step itself is described in agent/trainer/fused-step.ts). This wrapper checks arguments;
 * the addon re-checks their types, and the C++ core re-checks sizes and every row index before
 * it reads a row, so no call can make it read outside its buffers.
 *
 * forward() runs the model on rows of inputs, synchronously (validation losses, forecasts).
 *
 * train() runs on a libuv worker thread and resolves with new arrays; its inputs are copied
 * first, so the caller may reuse them at once. One train() at a time: Adam's moments are the
 * trainer's state. Memory: the moments, the gradient and a few row-sized scratch vectors (about
 * 3 floats per weight), allocated by the first train() (a trainer used only for forward() holds
 * none) and freed when the trainer is garbage-collected; dispose() only drops this handle.
 */
const U32_MAX = 2 ** 32 - 1;

function isCount(n: unknown, min: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= U32_MAX;
}

function checkLayout(layout: DenseLayout): void {
  for (const key of ['inputs', 'outputs', 'hidden', 'linearKernel', 'hiddenKernel', 'hiddenBias', 'headKernel', 'size'] as const) {
    const min = key === 'inputs' || key === 'outputs' || key === 'size' ? 1 : 0;
    if (!isCount(layout[key], min)) throw new RangeError(`layout.${key} must be an integer in ${min}…${U32_MAX}, got ${layout[key]}`);
  }
  const { inputs: I, outputs: O, hidden: HD, size } = layout;
  const blocks: Array<[string, number, number]> = [['linear kernel', layout.linearKernel, I * O]];
  if (HD > 0) blocks.push(['hidden kernel', layout.hiddenKernel, I * HD], ['hidden bias', layout.hiddenBias, HD], ['head kernel', layout.headKernel, HD * O]);
  for (const [name, offset, count] of blocks) {
    if (offset + count > size) throw new RangeError(`layout: the ${name} (${count} weights at ${offset}) does not fit in ${size} weights`);
  }
  // The C++ step reads and writes the blocks through non-aliasing (__restrict) pointers.
  const sorted = [...blocks].sort((a, b) => a[1] - b[1]);
  for (let k = 1; k < sorted.length; k++) {
    const [prev, offset, count] = sorted[k - 1]!;
    if (offset + count > sorted[k]![1]) throw new RangeError(`layout: the ${prev} (${count} weights at ${offset}) overlaps the ${sorted[k]![0]} at ${sorted[k]![1]}`);
  }
}

function checkAdam(adam: AdamConstants): void {
  const inUnit = (v: number) => typeof v === 'number' && v >= 0 && v < 1;
  if (!inUnit(adam.beta1) || !inUnit(adam.beta2) || !(typeof adam.epsilon === 'number' && adam.epsilon > 0 && Number.isFinite(adam.epsilon))) {
    throw new RangeError(`adam needs 0 ≤ beta1, beta2 < 1 and a finite epsilon > 0, got ${JSON.stringify(adam)}`);
  }
}

export class NativeDenseTrainer implements FusedDenseTrainer {
  private readonly layout: DenseLayout;
  private handle: NativeDenseTrainerHandle | undefined;

  constructor(layout: DenseLayout, adam: AdamConstants) {
    checkLayout(layout);
    checkAdam(adam);
    this.layout = { ...layout };
    this.handle = new (loadAddon().NativeDenseTrainer)({ ...layout }, { ...adam });
  }

  private open(): NativeDenseTrainerHandle {
    if (!this.handle) throw new Error('the native dense trainer was disposed');
    return this.handle;
  }

  async train(initial: Float32Array, input: DenseTrainInput): Promise<{ weights: Float32Array; epochLosses: Float64Array }> {
    const handle = this.open();
    const { inputs: I, outputs: O, size: P } = this.layout;
    const { rows, epochs, batchSize, learningRate } = input;
    if (!isCount(rows, 1) || !isCount(epochs, 1) || !isCount(batchSize, 1)) {
      throw new RangeError(`rows, epochs and batchSize must be positive integers, got ${rows}, ${epochs}, ${batchSize}`);
    }
    if (!(learningRate > 0 && Number.isFinite(learningRate))) throw new RangeError(`learningRate must be a positive finite number, got ${learningRate}`);
    if (initial.length !== P) throw new RangeError(`weights have ${initial.length} values, the layout needs ${P}`);
    if (input.x.length !== rows * I || input.t.length !== rows * O || input.order.length !== rows * epochs) {
      throw new RangeError(`train input sizes do not match ${rows} rows × ${I} inputs → ${O} outputs over ${epochs} epochs`);
    }
    return handle.train(initial, input.x, input.t, input.order, rows, epochs, batchSize, learningRate);
  }

  resetOptimizer(): void {
    this.open().resetOptimizer();
  }

  /** The model's outputs [rows × outputs] for input rows x [rows × inputs]; train()'s forward pass. */
  forward(weights: Float32Array, x: Float32Array, rows: number): Float32Array {
    const handle = this.open();
    const { inputs: I, size: P } = this.layout;
    if (!isCount(rows, 1)) throw new RangeError(`rows must be a positive integer, got ${rows}`);
    if (weights.length !== P) throw new RangeError(`weights have ${weights.length} values, the layout needs ${P}`);
    if (x.length !== rows * I) throw new RangeError(`x has ${x.length} values, not ${rows} rows × ${I} inputs`);
    return handle.forward(weights, x, rows);
  }

  dispose(): void {
    this.handle = undefined;
  }
}
