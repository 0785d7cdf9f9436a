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
// The step's data types live beside the native engine (native/fused-step-types.ts): the native
// layer comes first in the data flow, so it cannot import them from here.
export type { AdamConstants, DenseLayout, DenseTrainInput, FusedDenseTrainer } from '../../native/fused-step-types.js';
export { TFJS_ADAM } from '../../native/fused-step-types.js';

export type FusedEngine = { kind: 'webgpu'; device: GPUDevice } | { kind: 'native' };

let engine: FusedEngine | undefined;

export function setFusedEngine(e: FusedEngine | undefined): void {
  engine = e;
}

/** The engine dense models train on; undefined = tfjs's active backend. */
export function fusedEngine(): FusedEngine | undefined {
  return engine;
}
