import * as assert from 'uvu/assert';
import type { Candidate } from '../../agent/trainer/backends.js';
import { Forecaster } from '../../agent/trainer/forecaster.js';
import type { ModelSpec } from '../../agent/trainer/model.js';
import { fitScaler, type Scaler } from '../../agent/trainer/scaler.js';
import { buildWindows, chronologicalSplit, type WindowSet } from '../../agent/trainer/windows.js';
import { NativeDenseTrainer } from '../../native/dense-trainer.js';
import { twoNabCpuChannels } from './nab-traces.js';

/**
 * What the fused-step tests (gpu-dense, native-dense) share: real training windows, and the
 * weights and losses after the same training calls on two backends, to compare a fused engine
 * with tfjs from the same start and batch order.
 */
export interface TrainingData {
  train: WindowSet;
  validation: WindowSet;
  scaler: Scaler;
}

/** The first 1,200 samples of two real NAB EC2 CPU traces as one 2-channel machine, L 30, H `horizon`. */
export function nabTrainingData(workDir: string, horizon = 5): TrainingData {
  const ws = buildWindows(twoNabCpuChannels(workDir).values.subarray(0, 2 * 1200), 2, 30, horizon);
  const { train, validation } = chronologicalSplit(ws, 0.2);
  return { train, validation, scaler: fitScaler(train) };
}

export interface TrainCall {
  epochs: number;
  batchSize: number;
  seed: number;
  /** resetOptimizer() before this call. */
  reset?: boolean;
}

export interface TrainedOn {
  weights: Float32Array;
  /** Each call's final epoch loss. */
  losses: number[];
  validationLoss: number;
}

/** Activates `backend`, trains a fresh forecaster (seed 11, lr 0.003) through `calls`. */
export async function trainOn(backend: Candidate, spec: ModelSpec, data: TrainingData, calls: TrainCall[]): Promise<TrainedOn> {
  await backend.activate();
  const f = new Forecaster(spec, { seed: 11, learningRate: 0.003, scaler: data.scaler });
  try {
    const losses: number[] = [];
    for (const c of calls) {
      if (c.reset) f.resetOptimizer();
      losses.push((await f.train(data.train, c)).loss);
    }
    return { weights: f.getWeights(), losses, validationLoss: f.loss(data.validation) };
  } finally {
    f.dispose();
  }
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: Float32Array): number {
  return a.reduce((m, w) => Math.max(m, Math.abs(w)), 0);
}

/**
 * Losses (each call's and validation) agree to float precision, weights within 5e-3 of their
 * scale. Weights drift apart slowly: summation order differs, and Adam divides tiny gradients by
 * their own size, so 1e-7 differences grow (measured 7e-4 of 0.56 after 4 epochs). A wrong
 * gradient or update moves weights by the order of the weights.
 */
export function assertSameTraining(reference: TrainedOn, fused: TrainedOn, label: string): void {
  reference.losses.forEach((l, i) => assert.ok(Math.abs(l - fused.losses[i]!) < 1e-5 * l, `${label} call ${i}: reference ${l} fused ${fused.losses[i]}`));
  const v = reference.validationLoss;
  assert.ok(Math.abs(v - fused.validationLoss) < 1e-5 * v, `${label} validation: reference ${v} fused ${fused.validationLoss}`);
  const diff = maxAbsDiff(reference.weights, fused.weights);
  assert.ok(diff < 5e-3 * maxAbs(reference.weights), `${label}: max |Δw| ${diff} (max |w| ${maxAbs(reference.weights)})`);
}

/** Runs `body`; returns its result and how many C++ forward passes (NativeDenseTrainer.forward) it made. */
export async function countCppForwards<T>(body: () => T | Promise<T>): Promise<{ calls: number; result: T }> {
  const forward = NativeDenseTrainer.prototype.forward;
  let calls = 0;
  NativeDenseTrainer.prototype.forward = function (...args) {
    calls++;
    return forward.apply(this, args);
  };
  try {
    const result = await body();
    return { calls, result };
  } finally {
    NativeDenseTrainer.prototype.forward = forward;
  }
}
