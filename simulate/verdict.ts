import type { Method, MethodScores } from './experiment.js';

/**
 * The accuracy goal, checked on a simulation's scores: for every metric the federated
 * model beats persistence and local-only training and stays within 5 % of centralised training.
 * It is checked on RMSE and MAE over all steps ahead, and on RMSE at each step ahead (a spike
 * five minutes ahead is the point, so the last step must hold too). Pure: scores in, verdict out.
 */
export const CENTRALISED_TOLERANCE = 0.05;

export interface Check {
  /** federated / persistence − 1, federated / local − 1, federated / centralised − 1 (negative = federated better). */
  vsPersistence: number;
  vsLocal: number;
  vsCentralized: number;
  met: boolean;
}

export interface MetricVerdict {
  rmse: Check;
  mae: Check;
  rmseByStep: Check[];
  met: boolean;
}

export interface Verdict {
  metrics: Record<string, MetricVerdict>;
  met: boolean;
}

/**
 * a / b − 1, where an error of 0 against 0 is level (0) and any error against 0 is Infinity
 * behind. A metric that never moves in the test part (a constant column) has every error 0, and
 * 0 / 0 would print as "NaN %" and reach --json as null.
 */
export function relativeDifference(a: number, b: number): number {
  if (b > 0) return a / b - 1;
  return a === 0 ? 0 : Infinity;
}

function check(federated: number, persistence: number, local: number, centralized: number): Check {
  const vsPersistence = relativeDifference(federated, persistence);
  const vsLocal = relativeDifference(federated, local);
  const vsCentralized = relativeDifference(federated, centralized);
  return { vsPersistence, vsLocal, vsCentralized, met: vsPersistence < 0 && vsLocal < 0 && vsCentralized <= CENTRALISED_TOLERANCE };
}

export function goalVerdict(scores: Record<Method, MethodScores>, metrics: string[]): Verdict {
  const out: Record<string, MetricVerdict> = {};
  const { federated: f, persistence: p, local: l, centralized: c } = scores;
  for (const k of metrics) {
    const rmse = check(f.rmse[k]!, p.rmse[k]!, l.rmse[k]!, c.rmse[k]!);
    const mae = check(f.mae[k]!, p.mae[k]!, l.mae[k]!, c.mae[k]!);
    const rmseByStep = f.rmseByStep[k]!.map((v, h) => check(v, p.rmseByStep[k]![h]!, l.rmseByStep[k]![h]!, c.rmseByStep[k]![h]!));
    out[k] = { rmse, mae, rmseByStep, met: rmse.met && mae.met && rmseByStep.every((s) => s.met) };
  }
  return { metrics: out, met: Object.values(out).every((m) => m.met) };
}

const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)} %`;

/** One line per metric and measure, e.g. `cpu RMSE   vs persistence −12.0 %, vs local −2.6 %, vs centralised +1.4 %  met`. */
export function formatVerdict(v: Verdict): string[] {
  const lines: string[] = [];
  const line = (label: string, c: Check) =>
    `${label.padEnd(16)} vs persistence ${pct(c.vsPersistence).padStart(8)}, vs local ${pct(c.vsLocal).padStart(8)}, vs centralised ${pct(c.vsCentralized).padStart(8)}  ${c.met ? 'met' : 'NOT met'}`;
  for (const [k, m] of Object.entries(v.metrics)) {
    lines.push(line(`${k} RMSE`, m.rmse), line(`${k} MAE`, m.mae));
    m.rmseByStep.forEach((c, h) => lines.push(line(`${k} RMSE t+${h + 1}`, c)));
  }
  lines.push(`goal (federated beats persistence and local-only, within ${CENTRALISED_TOLERANCE * 100} % of centralised, every metric, RMSE, MAE and every step): ${v.met ? 'met' : 'NOT met'}`);
  return lines;
}
