import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { meanCost, privacyCost } from '../../../simulate/privacy-cost.js';

const scores = (rmse: number, mae: number) => ({ rmse: { cpu: rmse, mem: rmse / 10 }, mae: { cpu: mae, mem: mae / 10 }, rmseByStep: {} });

test('relative change of RMSE and MAE per metric, and their mean', () => {
  const c = privacyCost(scores(2, 1), scores(2.5, 0.9), ['cpu', 'mem']);
  assert.ok(Math.abs(c.rmse['cpu']! - 0.25) < 1e-12 && Math.abs(c.rmse['mem']! - 0.25) < 1e-12);
  assert.ok(Math.abs(c.mae['cpu']! + 0.1) < 1e-12);
  assert.ok(Math.abs(meanCost(c) - 0.075) < 1e-12);
  assert.throws(() => privacyCost(scores(1, 1), scores(1, 1), ['disk']), /metric 'disk' is missing/);
});

test.run();
