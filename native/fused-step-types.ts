/**
 * The data types of the fused dense training step that both engines implement (the C++ one in
 * this folder, native/dense-trainer.ts, and the WebGPU one in agent/trainer/gpu/); the step itself
 * is described in agent/trainer/fused-step.ts.
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

