import { IcosflError } from '../../common/errors.js';
import { RIDGE_POOLED_LAMBDAS } from '../../common/protocol/federation-model.js';
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
 * RMSE 1.13). The closed form has no steps to lack.
 *
 * One head per channel: a channel-independent model shares its hidden layer across channels, but
 * the least-squares statistics are kept per channel (the rows of that channel), so every channel
 * gets its own pooled fit and penalty, and each machine then refits each channel toward its
 * pooled coefficients, picking the penalty per step ahead on its own validation tail
 * (personalHeads). Why: CPU and memory move differently (memory is flat for hours, then jumps).
 * The first version, one pooled head for both and one personal penalty per machine, forecast GCD
 * 301–350 memory with RMSE 0.2011 against a local-only model's 0.1963; per channel and step it
 * is 0.1965, and GCD 401–450 cpu went from 1.087 to 1.016 (centralised MLP: 1.100). Measured
 * over 12 trace sets in docs/ARCHITECTURE.md. A joint model (channels as one input) has one
 * head for all.
 */

/**
 * Standard deviation of the hidden layer's random biases. 0 would leave every ReLU hinge at the
 * origin: that measured 2.8 % worse RMSE on GCD 401–450 cpu.
 */
export const RANDOM_BIAS_STD = 0.5;
/** Ridge penalties tried for the pooled fit (the protocol's list: agents report each one's validation loss). */
export const POOLED_LAMBDAS: readonly number[] = RIDGE_POOLED_LAMBDAS;
/** Penalties toward the pooled coefficients tried per machine: up to 1,000, where the fit is practically the pooled one. */
export const PERSONAL_LAMBDAS: readonly number[] = [...POOLED_LAMBDAS, 100, 1000];

/**
 * The packed means are divided by this before they cross the aggregation, and multiplied back
 * after. Why: the CKKS codec refuses values above its maxAbsWeight (16 by default), and a
 * feature's mean square E[φ²] over one channel's rows reached 39.2 on one GCD VM (set 101–150,
 * cpu; the largest over the 12 trace sets of docs/ARCHITECTURE.md). ÷16 leaves room up to 256
 * and costs 16× the codec's absolute error (≈ 5.5e-3 / Σ n_k, params.ts): ~1e-5 for 500
 * windows, below the smallest penalty tried.
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

/**
 * How many heads the model gets: one per channel when channels are independent (model row r is
 * channel r mod C, Forecaster.trainingRows), one for a joint model.
 */
export function headCount(f: Forecaster): number {
  return f.spec.channelIndependent ? f.spec.channels : 1;
}

/**
 * ΦᵀΦ and ΦᵀY of the model's current hidden layer over these windows (Forecaster.trainingRows),
 * one set per head (headCount), in one pass. Each set has one row per window.
 */
export function headStatistics(f: Forecaster, ws: WindowSet): HeadStatistics[] {
  const layout = requireLayout(f);
  const weights = f.getWeights();
  const { inputs, targets, rows } = f.trainingRows(ws);
  const I = layout.inputs;
  const D = layout.hidden;
  const O = layout.outputs;
  const d = I + D;
  const heads = headCount(f);
  const stats = Array.from({ length: heads }, () => ({ features: d, outputs: O, rows: ws.n, gram: new Float64Array(d * d), cross: new Float64Array(d * O) }));
  const phi = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const { gram, cross } = stats[r % heads]!;
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
  for (const { gram } of stats) for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) gram[a * d + b] = gram[b * d + a]!;
  return stats;
}

/** Length of packStatistics' vector: per head, the upper triangle of ΦᵀΦ, then ΦᵀY. */
export function packedLength(features: number, outputs: number, heads = 1): number {
  return heads * ((features * (features + 1)) / 2 + features * outputs);
}

/**
 * The heads' statistics as one flat vector of *means* (sums ÷ rows, then ÷ STATISTICS_SCALE),
 * head after head: the form that crosses the aggregation. FedAvg weighted by the rows (windows)
 * turns the machines' means into the pooled means.
 */
export function packStatistics(heads: HeadStatistics[]): Float32Array {
  const { features: d, outputs: O, rows } = heads[0]!;
  if (rows < 1) throw new RangeError('head statistics over no rows cannot be packed');
  if (heads.some((s) => s.rows !== rows || s.features !== d || s.outputs !== O)) throw new RangeError('the heads to pack differ in rows or shape');
  const out = new Float32Array(packedLength(d, O, heads.length));
  let k = 0;
  const perRow = 1 / (rows * STATISTICS_SCALE);
  for (const s of heads) {
    for (let a = 0; a < d; a++) for (let b = a; b < d; b++) out[k++] = s.gram[a * d + b]! * perRow;
    for (let i = 0; i < s.cross.length; i++) out[k++] = s.cross[i]! * perRow;
  }
  return out;
}

/** packStatistics' inverse: scaled means back to `heads` sets of sums over `rows`. */
export function unpackStatistics(packed: Float32Array, features: number, outputs: number, rows: number, heads = 1): HeadStatistics[] {
  if (packed.length !== packedLength(features, outputs, heads)) {
    throw new RangeError(
      `packed head statistics have ${packed.length} values, ${heads} head(s) of ${features} features → ${outputs} outputs need ${packedLength(features, outputs, heads)}`,
    );
  }
  const d = features;
  const perValue = rows * STATISTICS_SCALE;
  let k = 0;
  return Array.from({ length: heads }, () => {
    const gram = new Float64Array(d * d);
    const cross = new Float64Array(d * outputs);
    for (let a = 0; a < d; a++) {
      for (let b = a; b < d; b++) {
        const v = packed[k++]! * perValue;
        gram[a * d + b] = v;
        gram[b * d + a] = v;
      }
    }
    for (let i = 0; i < cross.length; i++) cross[i] = packed[k++]! * perValue;
    return { features, outputs, rows, gram, cross };
  });
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
 * Each machine's own heads: per head, its statistics refitted toward the head's prior (the pooled
 * coefficients) with each of `lambdas`, and for every output column (a step ahead; a step and
 * channel for a joint model) the coefficients of the penalty with the least squared error on
 * this machine's validation windows (Forecaster.outputErrors; ties go to the earlier penalty).
 * Why per column: the columns are separate least-squares problems over one ΦᵀΦ, so mixing their
 * penalties costs no extra solve; over the 12 trace sets of docs/ARCHITECTURE.md (measured with
 * one pooled head) it left 5 steps behind a local-only model where one penalty per channel left
 * 7 (seed 42; 5 and 5 under seed 7), and the worst cell behind local +1.14 % against +1.81 %.
 * Leaves the last tried head in the model; returns the heads and, per head, the penalty of each
 * column.
 */
export function personalHeads(
  f: Forecaster,
  own: HeadStatistics[],
  priors: Float64Array[],
  validation: WindowSet,
  lambdas: readonly number[] = PERSONAL_LAMBDAS,
): { beta: Float64Array; lambdas: number[] }[] {
  if (own.length !== headCount(f) || priors.length !== own.length) {
    throw new RangeError(`personalHeads: the model has ${headCount(f)} head(s), got ${own.length} statistics and ${priors.length} priors`);
  }
  const C = f.spec.channels;
  return own.map((stats, head) => {
    const O = stats.outputs;
    // Output column o of this head is entry `column(o)` of the model's [horizon × channels] errors.
    const column = (o: number) => (own.length > 1 ? o * C + head : o);
    const best = Array.from({ length: O }, () => ({ error: Infinity, lambda: NaN, beta: undefined as Float64Array | undefined }));
    for (const lambda of lambdas) {
      const beta = solveHead(stats, lambda, priors[head]);
      if (!beta) continue;
      setHead(f, beta);
      const errors = f.outputErrors(validation);
      for (let o = 0; o < O; o++) {
        const e = errors[column(o)]!;
        if (Number.isFinite(e) && e < best[o]!.error) best[o] = { error: e, lambda, beta };
      }
    }
    const beta = new Float64Array(stats.features * O);
    for (let o = 0; o < O; o++) {
      const picked = best[o]!.beta;
      if (!picked) throw new IcosflError('TRAINING_FAILED', `no ridge penalty in [${lambdas.join(', ')}] gave a finite validation error for head ${head}`);
      for (let i = o; i < beta.length; i += O) beta[i] = picked[i]!;
    }
    return { beta, lambdas: best.map((b) => b.lambda) };
  });
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
