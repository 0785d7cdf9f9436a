import type { WindowSet } from './windows.js';

/**
 * Per-channel standardisation, fitted on one machine's training windows only (per-machine
 * scaling beat global scaling for FedAvg, ../shared/DESIGN.md) and saved with the model (ICOS-FL
 * loses its scaler, so its saved models cannot be used).
 */
export interface Scaler {
  mean: number[];
  std: number[];
}

export function fitScaler(train: WindowSet): Scaler {
  const { channels: C } = train;
  if (train.n < 1) throw new RangeError('fitScaler needs at least one training window');
  const sum = new Float64Array(C);
  const sq = new Float64Array(C);
  // Every window's inputs: each sample appears `lookback` times (except at the ends), which
  // weights the series almost uniformly and needs nothing but the windows.
  for (let i = 0; i < train.x.length; i++) sum[i % C]! += train.x[i]!;
  const count = train.x.length / C;
  const mean = Array.from(sum, (v) => v / count);
  for (let i = 0; i < train.x.length; i++) sq[i % C]! += (train.x[i]! - mean[i % C]!) ** 2;
  // The level's std, not the step changes' std: measured on GCD, step-std units let a client
  // whose quiet training period ends in a jump dominate the pooled loss (federated and
  // centralised then never beat persistence on validation). The floor keeps a flat channel
  // (memory often is) from turning a 0.1 %-of-level change into a huge input.
  const std = Array.from(sq, (v, c) => Math.max(Math.sqrt(v / count), 1e-3 * Math.max(Math.abs(mean[c]!), 1)));
  return { mean, std };
}
