import { IcosflError } from '../../common/errors.js';
import type { Forecaster } from './forecaster.js';
import type { DenseLayout } from './fused-step.js';
import { denseLayout } from './model.js';
import { seededRandom } from './rng.js';
import type { WindowSet } from './windows.js';

/**
 * Federated ridge regression over random features: a dense model's hidden layer stays at its
 * seeded random initialisation (plus seeded random biases), and only its output layers (the
 * linear path and the head) are fitted, in closed form. A least-squares fit needs only the
 * sufficient statistics ΦᵀΦ and ΦᵀY of the features Φ = [inputs, relu(hidden)], and those add
 * across machines: the weighted FedAvg of each machine's *mean* statistics (weights = its rows)
 * is the pooled mean. So one pass through the ordinary (encrypted) aggregation gives every
 * machine the exact fit a centralised trainer would get on everyone's windows, without the
 * windows leaving their machines, and without the many rounds FedAvg needs to approach it.
 *
 * Why: on GCD VMs 401–450 (50 replicas of a few jobs), FedAvg's global model stayed behind
 * centralised training whatever we tried (docs/ARCHITECTURE.md): centralised training takes ~50×
 * more sequential steps than FedAvg's averaged ones, and it needs them (40 epochs to reach
 * RMSE 1.13). The closed form has no steps to lack. Each machine's fit personalised toward the
 * pooled one (bestHead with the pooled coefficients as prior) scored cpu RMSE 1.087 there, against
 * 1.100 for the centralised MLP.
 */

/**
 * Standard deviation of the hidden layer's random biases. 0 would leave every ReLU hinge at the
 * origin: that measured 2.8 % worse RMSE on GCD 401–450 cpu.
 */
export const RANDOM_BIAS_STD = 0.5;
/** Ridge penalties tried for the pooled fit, on the standardised features' scale. */
export const POOLED_LAMBDAS: readonly number[] = [1e-4, 1e-3, 1e-2, 0.1, 1, 10];
/** Penalties toward the pooled coefficients tried per machine: up to 1,000, where the fit is practically the pooled one. */
export const PERSONAL_LAMBDAS: readonly number[] = [...POOLED_LAMBDAS, 100, 1000];

/**
 * The packed means are divided by this before they cross the aggregation, and multiplied back
 * after. Why: the CKKS codec refuses values above its maxAbsWeight (16 by default), and a
 * feature's mean square E[φ²] reached 37.7 on one GCD VM (set 101–150, the largest over the 12
 * trace sets of docs/ARCHITECTURE.md). ÷16 leaves room up to 256 and costs 16× the
 * codec's absolute error (≈ 5.5e-3 / Σ n_k, params.ts): ~1e-5 for 500 windows, below the smallest
 * penalty tried.
 */
export const STATISTICS_SCALE = 16;

/** Sums over model rows of ΦᵀΦ (features × features, symmetric) and ΦᵀY (features × outputs). */
export interface HeadStatistics {
  features: number;
  outputs: number;
  rows: number;
  gram: Float64Array;
  cross: Float64Array;
}

function requireLayout(f: Forecaster): DenseLayout {
  const layout = denseLayout(f.model, f.spec);
  if (!layout) throw new IcosflError('MODEL_INCOMPATIBLE', `a ridge head needs a dense model (linear or mlp), not '${f.spec.kind}'`);
  return layout;
}

/** Replaces the hidden biases with seeded normal draws (σ = RANDOM_BIAS_STD); the kernel keeps its seeded He init. */
export function randomiseHiddenBias(f: Forecaster, seed: number): void {
  const layout = requireLayout(f);
  const weights = f.getWeights();
  const random = seededRandom(seed);
  for (let j = 0; j < layout.hidden; j++) {
    // Box–Muller; 1 − random() is in (0, 1], so the log is finite.
    const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    weights[layout.hiddenBias + j] = RANDOM_BIAS_STD * normal;
  }
  f.setWeights(weights);
}

/** ΦᵀΦ and ΦᵀY of the model's current hidden layer over these windows (Forecaster.trainingRows). */
export function headStatistics(f: Forecaster, ws: WindowSet): HeadStatistics {
  const layout = requireLayout(f);
  const weights = f.getWeights();
  const { inputs, targets, rows } = f.trainingRows(ws);
  const I = layout.inputs;
  const D = layout.hidden;
  const O = layout.outputs;
  const d = I + D;
  const gram = new Float64Array(d * d);
  const cross = new Float64Array(d * O);
  const phi = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < I; i++) phi[i] = inputs[r * I + i]!;
    for (let j = 0; j < D; j++) {
      let s = weights[layout.hiddenBias + j]!;
      for (let i = 0; i < I; i++) s += phi[i]! * weights[layout.hiddenKernel + i * D + j]!;
      phi[I + j] = s > 0 ? s : 0;
    }
    for (let a = 0; a < d; a++) {
      const pa = phi[a]!;
      if (pa === 0) continue; // inactive ReLUs (about half) and the last input, always 0
      for (let b = a; b < d; b++) gram[a * d + b]! += pa * phi[b]!;
      for (let o = 0; o < O; o++) cross[a * O + o]! += pa * targets[r * O + o]!;
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) gram[a * d + b] = gram[b * d + a]!;
  return { features: d, outputs: O, rows, gram, cross };
}

/** Length of packStatistics' vector: the upper triangle of ΦᵀΦ, then ΦᵀY. */
export function packedLength(features: number, outputs: number): number {
  return (features * (features + 1)) / 2 + features * outputs;
}

/**
 * The statistics as one flat vector of *means* (sums ÷ rows, then ÷ STATISTICS_SCALE), the form
 * that crosses the aggregation: FedAvg weighted by rows turns the machines' means into the
 * pooled mean.
 */
export function packStatistics(s: HeadStatistics): Float32Array {
  if (s.rows < 1) throw new RangeError('head statistics over no rows cannot be packed');
  const d = s.features;
  const out = new Float32Array(packedLength(d, s.outputs));
  let k = 0;
  const perRow = 1 / (s.rows * STATISTICS_SCALE);
  for (let a = 0; a < d; a++) for (let b = a; b < d; b++) out[k++] = s.gram[a * d + b]! * perRow;
  for (let i = 0; i < s.cross.length; i++) out[k++] = s.cross[i]! * perRow;
  return out;
}

/** packStatistics' inverse: scaled means back to sums over `rows`. */
export function unpackStatistics(packed: Float32Array, features: number, outputs: number, rows: number): HeadStatistics {
  if (packed.length !== packedLength(features, outputs)) {
    throw new RangeError(`packed head statistics have ${packed.length} values, ${features} features → ${outputs} outputs need ${packedLength(features, outputs)}`);
  }
  const d = features;
  const gram = new Float64Array(d * d);
  const cross = new Float64Array(d * outputs);
  const perValue = rows * STATISTICS_SCALE;
  let k = 0;
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = packed[k++]! * perValue;
      gram[a * d + b] = v;
      gram[b * d + a] = v;
    }
  }
  for (let i = 0; i < cross.length; i++) cross[i] = packed[k++]! * perValue;
  return { features, outputs, rows, gram, cross };
}

/**
 * β minimising mean‖Φβ − Y‖² + λ‖β − prior‖² (prior 0 when absent): (ΦᵀΦ/n + λI) β = ΦᵀY/n + λ·prior,
 * by Cholesky. undefined when the system is not positive definite, which only happens when λ is
 * below the noise the statistics picked up on the way (CKKS adds ~1e-6 to each mean).
 */
export function solveHead(s: HeadStatistics, lambda: number, prior?: Float64Array): Float64Array | undefined {
  if (!(lambda > 0)) throw new RangeError(`ridge penalty must be positive, got ${lambda}`);
  const d = s.features;
  const O = s.outputs;
  const n = Math.max(s.rows, 1);
  const chol = new Float64Array(d * d);
  for (let i = 0; i < d * d; i++) chol[i] = s.gram[i]! / n;
  for (let a = 0; a < d; a++) chol[a * d + a]! += lambda;
  // In place: the lower triangle becomes L with LLᵀ = A.
  for (let j = 0; j < d; j++) {
    let diag = chol[j * d + j]!;
    for (let k = 0; k < j; k++) diag -= chol[j * d + k]! ** 2;
    if (!(diag > 0)) return undefined;
    const l = Math.sqrt(diag);
    chol[j * d + j] = l;
    for (let i = j + 1; i < d; i++) {
      let v = chol[i * d + j]!;
      for (let k = 0; k < j; k++) v -= chol[i * d + k]! * chol[j * d + k]!;
      chol[i * d + j] = v / l;
    }
  }
  const beta = new Float64Array(d * O);
  const z = new Float64Array(d);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < d; i++) {
      let v = s.cross[i * O + o]! / n + (prior ? lambda * prior[i * O + o]! : 0);
      for (let k = 0; k < i; k++) v -= chol[i * d + k]! * z[k]!;
      z[i] = v / chol[i * d + i]!;
    }
    for (let i = d - 1; i >= 0; i--) {
      let v = z[i]!;
      for (let k = i + 1; k < d; k++) v -= chol[k * d + i]! * beta[k * O + o]!;
      beta[i * O + o] = v / chol[i * d + i]!;
    }
  }
  return beta;
}

/** Writes β into the model: its first `inputs` rows are the linear path, the rest the head. */
export function setHead(f: Forecaster, beta: Float64Array): void {
  const layout = requireLayout(f);
  const { inputs: I, hidden: D, outputs: O } = layout;
  if (beta.length !== (I + D) * O) throw new RangeError(`ridge coefficients have ${beta.length} values, the model's head needs ${(I + D) * O}`);
  const weights = f.getWeights();
  for (let i = 0; i < I * O; i++) weights[layout.linearKernel + i] = beta[i]!;
  for (let i = 0; i < D * O; i++) weights[layout.headKernel + i] = beta[I * O + i]!;
  f.setWeights(weights);
}

/**
 * Tries each penalty, keeps the head with the least `score()` (lower is better; the caller
 * decides on whose validation windows) and leaves it in the model. Penalties whose system is not
 * positive definite are skipped. Throws when none gives a finite score.
 */
export function bestHead(
  f: Forecaster,
  s: HeadStatistics,
  score: () => number,
  opts: { lambdas: readonly number[]; prior?: Float64Array },
): { lambda: number; score: number; beta: Float64Array } {
  let best: { lambda: number; score: number; beta: Float64Array } | undefined;
  for (const lambda of opts.lambdas) {
    const beta = solveHead(s, lambda, opts.prior);
    if (!beta) continue;
    setHead(f, beta);
    const v = score();
    if (Number.isFinite(v) && (!best || v < best.score)) best = { lambda, score: v, beta };
  }
  if (!best) throw new IcosflError('TRAINING_FAILED', `no ridge penalty in [${opts.lambdas.join(', ')}] gave a finite validation score`);
  setHead(f, best.beta);
  return best;
}
