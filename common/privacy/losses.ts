import { RIDGE_POOLED_LAMBDAS, ridgeHeads } from '../protocol/federation-model.js';
import type { Phase } from '../protocol/messages.js';
import type { FederationModel } from '../protocol/federation-model.js';
import { addGaussianNoise, type UniformSource } from './gaussian.js';

/**
 * The Gaussian mechanism on the validation losses an agent reports (an update's baseLoss, an
 * acknowledgement's loss or ridgeLosses): data-dependent values that leave the agent in
 * plaintext. Each relative loss is clipped to [0, L] (coordinator/strategy/model-selection.ts
 * caps at 2 anyway; a loss that could not be computed counts as L), so the k values of a round
 * have L2 sensitivity L·√k; each gets N(0, (σ_l·L·√k)²), then is clamped to [0, L]
 * (post-processing). A round's losses are thus one Gaussian mechanism of multiplier σ_l, released
 * under the same sampling as the update: with the update's σ the round is one Gaussian of
 * multiplier (σ⁻² + σ_l⁻²)^-½ (RDP adds), which the accountant composes. docs/decisions.md D17.
 */

/** How many loss values an agent reports in a round of this phase, under DP (a FedAvg round after step 1 sends no baseLoss). */
export function lossesPerRound(phase: Phase, base: number, model: FederationModel): number {
  if (phase === 'ridge') return ridgeHeads(model) * RIDGE_POOLED_LAMBDAS.length;
  if (phase === 'fedavg') return base === 0 ? 2 : 1;
  return 0;
}

/** The noise multiplier of one round's update and losses together (two Gaussian mechanisms composed). */
export function combinedNoiseMultiplier(updateMultiplier: number, lossMultiplier: number): number {
  if (!(updateMultiplier > 0) || !(lossMultiplier > 0)) throw new RangeError(`noise multipliers must be positive, got ${updateMultiplier} and ${lossMultiplier}`);
  return 1 / Math.sqrt(1 / updateMultiplier ** 2 + 1 / lossMultiplier ** 2);
}

/** One loss released: clipped to [0, clip], noised for a round of `perRound` values, clamped to [0, clip]. */
export function privatiseLoss(loss: number, opts: { clip: number; noiseMultiplier: number; perRound: number; source?: UniformSource }): number {
  const { clip, noiseMultiplier, perRound } = opts;
  if (!(clip > 0) || !Number.isFinite(clip)) throw new RangeError(`loss clip must be a positive number, got ${clip}`);
  if (!(Number.isInteger(perRound) && perRound >= 1)) throw new RangeError(`losses per round must be a positive integer, got ${perRound}`);
  // NaN (not computable) is data-dependent too: it goes out as the worst value, noised like any other.
  const clipped = Number.isNaN(loss) ? clip : Math.min(clip, Math.max(0, loss));
  const v = addGaussianNoise(Float64Array.of(clipped), noiseMultiplier * clip * Math.sqrt(perRound), opts.source)[0]!;
  return Math.min(clip, Math.max(0, v));
}
