import type { Check, Verdict } from './verdict.js';

/**
 * The accuracy goal over many trace sets at once (the `accuracy` benchmark): each set's
 * simulation verdict (verdict.ts) in, one summary out. Pure, so the figures quoted in
 * docs/ARCHITECTURE.md come from code with a test, not from a one-off script.
 */
export interface SweepSummary {
  /** Metrics (one per set and metric) meeting every check, and how many there are. */
  metricsMet: number;
  metrics: number;
  /** Over the RMSE and MAE cells (all steps ahead): the mean of federated / local − 1, how many are ≥ 0, and the largest. */
  meanVsLocal: number;
  cellsBehindLocal: number;
  cells: number;
  worstVsLocal: number;
  /** Per-step RMSE cells with federated / local − 1 ≥ 0, of `steps`. */
  stepsBehindLocal: number;
  steps: number;
  /** The largest federated / centralised − 1 over every cell and step, and where ("set.metric.rmse", "…t+5"). */
  worstVsCentralized: { cell: string; value: number };
  /** Each metric that missed a check: "set.metric: rmse, t+3" (the measures it missed). */
  misses: string[];
}

export function summariseSweep(runs: { set: string; verdict: Verdict }[]): SweepSummary {
  if (runs.length === 0) throw new RangeError('summariseSweep: no runs to summarise');
  const vsLocal: number[] = [];
  let metricsMet = 0;
  let metrics = 0;
  let stepsBehindLocal = 0;
  let steps = 0;
  let worstVsCentralized = { cell: '', value: -Infinity };
  const misses: string[] = [];
  for (const { set, verdict } of runs) {
    for (const [metric, m] of Object.entries(verdict.metrics)) {
      metrics++;
      if (m.met) metricsMet++;
      const named: [string, Check][] = [
        ['rmse', m.rmse],
        ['mae', m.mae],
        ...m.rmseByStep.map((c, h): [string, Check] => [`t+${h + 1}`, c]),
      ];
      for (const [name, c] of named) {
        if (c.vsCentralized > worstVsCentralized.value) worstVsCentralized = { cell: `${set}.${metric}.${name}`, value: c.vsCentralized };
      }
      vsLocal.push(m.rmse.vsLocal, m.mae.vsLocal);
      for (const c of m.rmseByStep) {
        steps++;
        if (c.vsLocal >= 0) stepsBehindLocal++;
      }
      const missed = named.filter(([, c]) => !c.met).map(([name]) => name);
      if (missed.length > 0) misses.push(`${set}.${metric}: ${missed.join(', ')}`);
    }
  }
  return {
    metricsMet,
    metrics,
    meanVsLocal: vsLocal.reduce((a, v) => a + v, 0) / vsLocal.length,
    cellsBehindLocal: vsLocal.filter((v) => v >= 0).length,
    cells: vsLocal.length,
    worstVsLocal: Math.max(...vsLocal),
    stepsBehindLocal,
    steps,
    worstVsCentralized,
    misses,
  };
}
