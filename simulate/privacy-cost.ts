import type { MethodScores } from './experiment.js';

/**
 * What differential privacy costs in accuracy: each method's RMSE and MAE with DP relative to
 * the same run without it, per metric, (dp − plain) / plain (+0.05 = 5 % worse). Pure.
 */
export type RelativeChange = { rmse: Record<string, number>; mae: Record<string, number> };

export function privacyCost(plain: MethodScores, dp: MethodScores, metrics: readonly string[]): RelativeChange {
  const rel = (a: number, b: number) => (b - a) / a;
  const out: RelativeChange = { rmse: {}, mae: {} };
  for (const m of metrics) {
    if (!(m in plain.rmse) || !(m in dp.rmse)) throw new RangeError(`privacyCost: metric '${m}' is missing from the scores`);
    out.rmse[m] = rel(plain.rmse[m]!, dp.rmse[m]!);
    out.mae[m] = rel(plain.mae[m]!, dp.mae[m]!);
  }
  return out;
}

/** The mean of every relative change (each metric's RMSE and MAE): one figure per method. */
export function meanCost(c: RelativeChange): number {
  const all = [...Object.values(c.rmse), ...Object.values(c.mae)];
  return all.reduce((a, b) => a + b, 0) / all.length;
}
