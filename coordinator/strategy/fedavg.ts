import { IcosflError } from '../../common/errors.js';

/** One client's contribution to a round: its flat weights and how many windows it trained on. */
export interface ClientUpdate {
  weights: Float32Array;
  samples: number;
}

/**
 * Weighted FedAvg on plaintext: Σ n_k·w_k / Σ n_k, accumulated in float64 so the order of the
 * clients does not change the result beyond float32 rounding. This is the reference the
 * encrypted path must match (under CKKS the agents encrypt n_k·w_k, the coordinator adds, the
 * agents divide); a client that drops out simply is not in `updates`.
 */
export function fedAvg(updates: readonly ClientUpdate[]): Float32Array {
  if (updates.length === 0) throw new RangeError('fedAvg needs at least one update');
  const length = updates[0]!.weights.length;
  const sum = new Float64Array(length);
  let total = 0;
  for (const [k, u] of updates.entries()) {
    if (!(u.weights instanceof Float32Array)) throw new TypeError(`update ${k}: weights must be a Float32Array`);
    if (!Number.isFinite(u.samples) || u.samples <= 0) throw new RangeError(`update ${k}: samples must be a positive number, got ${u.samples}`);
    if (u.weights.length !== length) {
      throw new IcosflError('MODEL_INCOMPATIBLE', `update ${k} has ${u.weights.length} weights, update 0 has ${length}`);
    }
    for (let i = 0; i < length; i++) sum[i]! += u.samples * u.weights[i]!;
    total += u.samples;
  }
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = sum[i]! / total;
  return out;
}
