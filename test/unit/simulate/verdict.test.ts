import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MethodScores, Method } from '../../../simulate/experiment.js';
import { formatVerdict, goalVerdict, relativeDifference } from '../../../simulate/verdict.js';

/** Scores where every method has the same error at every step, per metric. */
function scores(values: Record<Method, { rmse: number; mae: number; steps?: number[] }>): Record<Method, MethodScores> {
  const out = {} as Record<Method, MethodScores>;
  for (const [m, v] of Object.entries(values) as Array<[Method, { rmse: number; mae: number; steps?: number[] }]>) {
    out[m] = { rmse: { cpu: v.rmse }, mae: { cpu: v.mae }, rmseByStep: { cpu: v.steps ?? [v.rmse, v.rmse] } };
  }
  return out;
}

const good = { persistence: { rmse: 2, mae: 1.5 }, local: { rmse: 1.8, mae: 1.4 }, federated: { rmse: 1.7, mae: 1.3 }, centralized: { rmse: 1.65, mae: 1.25 }, fedavg: { rmse: 1.75, mae: 1.35 }, fineTuned: { rmse: 1.72, mae: 1.32 } };

test('met when federated beats persistence and local and is within 5 % of centralised on RMSE, MAE and every step', () => {
  const v = goalVerdict(scores(good), ['cpu']);
  assert.ok(v.met);
  assert.ok(Math.abs(v.metrics['cpu']!.rmse.vsPersistence - (1.7 / 2 - 1)) < 1e-12);
  assert.ok(formatVerdict(v).at(-1)!.endsWith(': met'));
});

test('each failure is caught: MAE worse than persistence, behind local, > 5 % behind centralised, one bad step', () => {
  assert.not.ok(goalVerdict(scores({ ...good, persistence: { rmse: 2, mae: 1.2 } }), ['cpu']).metrics['cpu']!.mae.met);
  assert.not.ok(goalVerdict(scores({ ...good, local: { rmse: 1.69, mae: 1.4 } }), ['cpu']).metrics['cpu']!.rmse.met);
  const far = goalVerdict(scores({ ...good, centralized: { rmse: 1.6, mae: 1.25 } }), ['cpu']);
  assert.not.ok(far.metrics['cpu']!.rmse.met);
  assert.not.ok(far.met);
  // Whole-horizon RMSE fine, but the last step loses to persistence.
  const step = goalVerdict(scores({ ...good, persistence: { rmse: 2, mae: 1.5, steps: [2, 1.6] }, federated: { rmse: 1.7, mae: 1.3, steps: [1.5, 1.7] } }), ['cpu']);
  assert.ok(step.metrics['cpu']!.rmse.met);
  assert.not.ok(step.metrics['cpu']!.rmseByStep[1]!.met);
  assert.not.ok(step.met);
  assert.match(formatVerdict(step).join('\n'), /cpu RMSE t\+2 .*NOT met/);
});

test('a metric that never changes: every error 0 is level (0 %), not NaN, and level with persistence is not beating it', () => {
  const zero = { rmse: 0, mae: 0 };
  const v = goalVerdict(scores({ persistence: zero, local: zero, federated: zero, centralized: zero }), ['cpu']);
  const rmse = v.metrics['cpu']!.rmse;
  assert.equal([rmse.vsPersistence, rmse.vsLocal, rmse.vsCentralized], [0, 0, 0]);
  assert.not.ok(v.met);
  assert.match(formatVerdict(v)[0]!, /vs persistence +\+0\.0 %.*NOT met/);
});

test('relativeDifference: ratio − 1, level at 0 against 0, Infinity for any error against 0', () => {
  assert.is(relativeDifference(1.5, 2), -0.25);
  assert.is(relativeDifference(0, 0), 0);
  assert.is(relativeDifference(0.1, 0), Infinity);
});

test.run();
