/**
 * The fused training step of the dense forecasters ('linear' and 'mlp', see model.ts):
 *
 *   y = x·Wlin + relu(x·W1 + b1)·W2        loss = mean((y − t)²)        Adam on every weight
 *
 * tfjs runs that step as ~80 small kernels (gather, matmuls, bias, relu, loss, their gradients,
 * Adam's element-wise ops per variable). Two engines run it fused instead, with tfjs's maths
 * (same loss, gradient, relu derivative and Adam with bias correction), so a model trained by
 * either and by tfjs from the same weights and batch order agree up to float summation order:
 *
 * - 'webgpu' (gpu/): two compute dispatches per step, every epoch in one GPU submission.
 * - 'native' (native/src/dense-step.cpp through native/dense-trainer.ts): one C++ pass over each
 *   batch's rows on a worker thread, every weight matrix in L1 cache.
 *
 * The engine is process-wide, like tfjs's active backend: backends.ts sets it when it activates
 * the 'webgpu' or 'native' backend and clears it for every other. While it is set, a dense
 * model's forward passes (validation losses, forecasts) run in C++ too (the native step's own
 * forward, Forecaster.nativeForward); LSTM models train and predict on tfjs's CPU-side backend.
 */
export interface DenseLayout {
  inputs: number;
  outputs: number;
  /** 0 for the 'linear' model (no hidden layer). */
  hidden: number;
  /** Offsets (in floats) of Wlin [inputs × outputs], W1 [inputs × hidden], b1 [hidden], W2 [hidden × outputs]. */
  linearKernel: number;
  hiddenKernel: number;
  hiddenBias: number;
  headKernel: number;
  /** Total weights. */
  size: number;
}

export interface AdamConstants {
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** tf.train.adam's defaults, and the epsilon of tfjs's float32 backends. */
export const TFJS_ADAM: AdamConstants = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

export interface DenseTrainInput {
  /** Input rows [rows × inputs] and target rows [rows × outputs], already scaled. */
  x: Float32Array;
  t: Float32Array;
  rows: number;
  /** Row order of each epoch, concatenated: epochs × rows indices. */
  order: Uint32Array;
  epochs: number;
  batchSize: number;
  learningRate: number;
}

/** What both engines implement: Adam's moments live in the trainer until resetOptimizer(). */
export interface FusedDenseTrainer {
  /** Trains from `initial` weights; returns the new weights and the mean batch loss of each epoch. */
  train(initial: Float32Array, input: DenseTrainInput): Promise<{ weights: Float32Array; epochLosses: Float64Array }>;
  resetOptimizer(): void;
  dispose(): void;
}

export type FusedEngine = { kind: 'webgpu'; device: GPUDevice } | { kind: 'native' };

let engine: FusedEngine | undefined;

export function setFusedEngine(e: FusedEngine | undefined): void {
  engine = e;
}

/** The engine dense models train on; undefined = tfjs's active backend. */
export function fusedEngine(): FusedEngine | undefined {
  return engine;
}
