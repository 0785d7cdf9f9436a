/**
 * How a pooled model (a FedAvg round's global model, an epoch of centralised training) is judged
 * from the clients' own validation reports: the mean over clients of each client's validation
 * loss relative to persistence's on the same windows (Forecaster.relativeLoss), each capped at
 * RELATIVE_LOSS_CAP. Pure: reports in, score out (lower is better, 1 = persistence everywhere).
 *
 * Why not Flower's default, the mean of the losses weighted by window counts: each machine's
 * loss is in its own standardised units, so a machine whose validation tail does something its
 * training never showed outweighs all the others. Measured on GCD VMs 301–350: VM 4907063734_1's
 * memory sat within ±0.05 % in training and then moved, giving it a persistence loss 300× the
 * others'. With weighted losses no FedAvg round and no centralised epoch ever beat the untrained
 * model (which forecasts persistence), so both stayed exactly persistence there and on VMs
 * 101–150, while local models beat persistence by 9 % and 35 %. A ratio to the machine's own
 * persistence is comparable across machines; the cap bounds what one machine can say (a ratio
 * is unbounded where the validation tail is flat).
 */
export const RELATIVE_LOSS_CAP = 2;

export function pooledRelativeLoss(relativeLosses: readonly number[]): number {
  if (relativeLosses.length === 0) throw new RangeError('pooledRelativeLoss needs at least one client report');
  let sum = 0;
  for (const [k, r] of relativeLosses.entries()) {
    // NaN (an empty validation set) is a caller's bug; +Infinity (a flat tail) is legitimate.
    if (Number.isNaN(r) || r < 0) throw new RangeError(`client ${k}: relative loss must be ≥ 0, got ${r}`);
    sum += Math.min(RELATIVE_LOSS_CAP, r);
  }
  return sum / relativeLosses.length;
}
