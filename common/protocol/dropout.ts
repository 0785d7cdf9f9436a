import { createHash } from 'node:crypto';
import type { FederationModel } from './federation-model.js';
import type { DropoutSpec } from './messages.js';

/**
 * Federated dropout (Caldas et al. 2018, "Expanding the reach of federated learning by reducing
 * client resource requirements"): in a FedAvg round each agent trains and sends the model with a
 * fraction of its hidden units dropped. Which units follows from the announcement's seed and the
 * agent's id alone, so the coordinator (which knows who contributed with what n_k) can say per
 * unit how much sample weight stands behind it, and every agent can divide by that.
 *
 * The rule, written once for both ends:
 *   kept(seed, agent) = the first D − round(rate·D) (at least 1) units of a Fisher–Yates shuffle of
 *   0…D−1 driven by splitmix32 seeded with the first 4 bytes of SHA-256("<seed>:<agent>").
 * A dropped unit j of the MLP is its hidden-kernel column, its bias and its head row: the agent
 * zeroes them before training (a ReLU unit with zero inputs and output weights gets zero
 * gradients, so it stays zero) and sends zeros there. The linear path is never dropped.
 *
 * The body of a global is still Σ n_k·w_k / Σ n_k over every contributor (CKKS sums ciphertexts,
 * plaintext FedAvg averages: neither changes); agents rescale each unit's parameters by
 * Σ n_k / unitWeight_j, and a unit no contributor kept keeps the round's base values.
 */

/**
 * Where the droppable units' parameters sit in the flat MLP weight vector: tfjs-layers' weight
 * order for agent/trainer/model.ts buildModel, which is hidden kernel, hidden bias, linear
 * kernel, head kernel (a test checks it against the trainer's denseLayout).
 */
export interface DropoutLayout {
  units: number;
  inputs: number;
  outputs: number;
  /** hidden kernel [inputs × units] row-major, bias [units], head kernel [units × outputs] row-major. */
  hiddenKernel: number;
  hiddenBias: number;
  headKernel: number;
  size: number;
}

/** The MLP's layout; undefined for models without droppable units. */
export function dropoutLayout(m: FederationModel): DropoutLayout | undefined {
  if (m.kind !== 'mlp') return undefined;
  const channels = m.channelIndependent ? 1 : m.metrics.length;
  const I = m.lookback * channels;
  const O = m.horizon * channels;
  const D = m.hiddenUnits;
  return { units: D, inputs: I, outputs: O, hiddenKernel: 0, hiddenBias: I * D, headKernel: I * D + D + I * O, size: I * O + I * D + D + D * O };
}

/** A round's mask seed: a function of the federation and round id, so a replayed journal announces the same one. */
export function dropoutSeed(federation: string, round: number): number {
  return createHash('sha256').update(`icosfl-dropout:${federation}:${round}`).digest().readUInt32BE(0);
}

function splitmix32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Units an agent keeps: round(rate·units) dropped, at least one kept. */
export function keptCount(rate: number, units: number): number {
  return Math.max(1, units - Math.round(rate * units));
}

/** kept[j] = 1 when the agent keeps unit j this round. */
export function keptUnits(spec: DropoutSpec, agent: string, units: number): Uint8Array {
  if (!Number.isInteger(units) || units < 1) throw new RangeError(`keptUnits: units must be a positive integer, got ${units}`);
  if (!(spec.rate >= 0 && spec.rate <= 0.9)) throw new RangeError(`keptUnits: rate must be within 0…0.9, got ${spec.rate}`);
  const next = splitmix32(createHash('sha256').update(`${spec.seed}:${agent}`).digest().readUInt32BE(0));
  const order = Array.from({ length: units }, (_, j) => j);
  const keep = keptCount(spec.rate, units);
  const kept = new Uint8Array(units);
  // Partial Fisher–Yates: the first `keep` positions are a uniform sample without replacement.
  for (let i = 0; i < keep; i++) {
    const r = i + (next() % (units - i));
    [order[i], order[r]] = [order[r]!, order[i]!];
    kept[order[i]!] = 1;
  }
  return kept;
}

/** Σ n_k of the contributors that kept each unit: what the coordinator puts in the global (unitWeights). */
export function unitWeights(spec: DropoutSpec, contributors: readonly { agent: string; samples: number }[], units: number): number[] {
  const w = new Array<number>(units).fill(0);
  for (const c of contributors) {
    const kept = keptUnits(spec, c.agent, units);
    for (let j = 0; j < units; j++) if (kept[j]) w[j]! += c.samples;
  }
  return w;
}

/** Calls fn(index) for every parameter of unit j. */
function forUnit(l: DropoutLayout, j: number, fn: (index: number) => void): void {
  for (let i = 0; i < l.inputs; i++) fn(l.hiddenKernel + i * l.units + j);
  fn(l.hiddenBias + j);
  for (let o = 0; o < l.outputs; o++) fn(l.headKernel + j * l.outputs + o);
}

/** A copy of weights with the dropped units' parameters set to zero (the agent's sub-model, and what it sends). */
export function dropUnits(weights: Float32Array, l: DropoutLayout, kept: Uint8Array): Float32Array {
  if (weights.length !== l.size || kept.length !== l.units) throw new RangeError(`dropUnits: ${weights.length} weights / ${kept.length} units; the layout has ${l.size} / ${l.units}`);
  const out = weights.slice();
  for (let j = 0; j < l.units; j++) if (!kept[j]) forUnit(l, j, (x) => (out[x] = 0));
  return out;
}

/**
 * The per-parameter average from a global's Σ n_k·w_k / Σ n_k: each unit's parameters times
 * Σ n_k / unitWeight_j (its contributors' Σ n_k), the base model's values where no one kept the unit.
 */
export function rescaleAverage(average: Float32Array, totalSamples: number, weights: readonly number[], base: Float32Array, l: DropoutLayout): Float32Array {
  if (average.length !== l.size || base.length !== l.size) throw new RangeError(`rescaleAverage: ${average.length} values, base ${base.length}; the layout has ${l.size}`);
  if (weights.length !== l.units) throw new RangeError(`rescaleAverage: ${weights.length} unit weights for ${l.units} units`);
  const out = average.slice();
  for (let j = 0; j < l.units; j++) {
    const w = weights[j]!;
    if (w > totalSamples) throw new RangeError(`rescaleAverage: unit ${j} weighs ${w}, more than the round's Σ n_k ${totalSamples}`);
    if (w === 0) forUnit(l, j, (x) => (out[x] = base[x]!));
    else {
      const factor = totalSamples / w;
      forUnit(l, j, (x) => (out[x] = average[x]! * factor));
    }
  }
  return out;
}
