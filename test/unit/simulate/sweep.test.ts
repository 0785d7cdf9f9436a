import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { summariseSweep } from '../../../simulate/sweep.js';
import type { Check, MetricVerdict, Verdict } from '../../../simulate/verdict.js';

/** A check with these ratios to local and centralised (persistence always beaten), met as verdict.ts decides. */
const check = (vsLocal: number, vsCentralized: number): Check => ({ vsPersistence: -0.1, vsLocal, vsCentralized, met: vsLocal < 0 && vsCentralized <= 0.05 });

function metric(rmse: Check, mae: Check, steps: Check[]): MetricVerdict {
  return { rmse, mae, rmseByStep: steps, met: [rmse, mae, ...steps].every((c) => c.met) };
}

const verdict = (metrics: Record<string, MetricVerdict>): Verdict => ({ metrics, met: Object.values(metrics).every((m) => m.met) });

test('counts metrics met, averages the RMSE/MAE margins over local, counts steps behind, finds the worst cell against centralised', () => {
  const runs = [
    {
      set: 'a',
      verdict: verdict({
        cpu: metric(check(-0.04, 0.01), check(-0.02, 0.02), [check(-0.03, 0.0), check(-0.01, 0.03)]),
        mem: metric(check(-0.01, -0.02), check(0.01, -0.01), [check(-0.01, 0.0), check(0.0, 0.0)]),
      }),
    },
    { set: 'b', verdict: verdict({ cpu: metric(check(-0.06, 0.02), check(-0.04, 0.07), [check(-0.05, 0.04), check(-0.02, 0.045)]) }) },
  ];
  const s = summariseSweep(runs);
  assert.is(s.metrics, 3);
  assert.is(s.metricsMet, 1); // a.cpu; a.mem is behind local on MAE and at t+2; b.cpu is > 5 % behind centralised on MAE
  assert.is(s.cells, 6);
  // (−0.04 − 0.02 − 0.01 + 0.01 − 0.06 − 0.04) / 6
  assert.ok(Math.abs(s.meanVsLocal - -0.16 / 6) < 1e-12);
  assert.is(s.cellsBehindLocal, 1);
  assert.is(s.worstVsLocal, 0.01);
  assert.is(s.steps, 6);
  assert.is(s.stepsBehindLocal, 1); // a.mem t+2 (level counts as behind: the goal wants federated strictly better)
  assert.equal(s.worstVsCentralized, { cell: 'b.cpu.mae', value: 0.07 });
  assert.equal(s.misses, ['a.mem: mae, t+2', 'b.cpu: mae']);
});

test('nothing to summarise is an error', () => {
  assert.throws(() => summariseSweep([]), /no runs to summarise/);
});

test.run();
