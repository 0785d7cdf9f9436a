import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULTS } from '../../../agent/config/schema.js';
import { PrivacyAccountant } from '../../../common/privacy/accountant.js';
import { combinedNoiseMultiplier } from '../../../common/privacy/losses.js';
import { DIST, REPO_ROOT } from '../../helpers/paths.js';

// `icosfl-simulate run --dp` end to end on the shipped GCD traces: the run without DP, the run
// with it, ε as the accountant gives it for the rounds each agent took part in, and the cost.
const cli = join(DIST, 'simulate', 'cli.js');
const data = join(REPO_ROOT, 'data', 'gcd');
const BASE = ['run', '--data', data, '--metrics', 'cpu_busy_pct,mem_used_pct', '--clients', '3', '--rounds', '2', '--plaintext', '--backend', 'native'];

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, LOG_LEVEL: 'silent' } });
}

type DpJson = { ridge_model: boolean; epsilon: number; delta: number; rounds: number; noise_multiplier: number; clip_norm: number; rmse: Record<string, Record<string, number>>; relative_change: Record<string, { rmse: Record<string, number>; mae: Record<string, number> }> };

test('--dp reports ε for the rounds taken (ridge + FedAvg) and each federated row against the run without DP', () => {
  const r = run([...BASE, '--dp', '--json']);
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rmse: Record<string, Record<string, number>>; dp: DpJson };
  const P = DEFAULTS.privacy;
  assert.equal([out.dp.rounds, out.dp.noise_multiplier, out.dp.clip_norm, out.dp.delta], [3, P.noise_multiplier, P.clip_norm, P.delta]);
  // Each round charged for its update and its validation losses together (D17).
  const want = new PrivacyAccountant([{ samplingRate: 1, noiseMultiplier: combinedNoiseMultiplier(P.noise_multiplier, P.loss_noise_multiplier), steps: 3 }]).spent(P.delta).epsilon;
  assert.ok(Math.abs(out.dp.epsilon - want) < 1e-9, `ε ${out.dp.epsilon}, want ${want}`);
  // Noised statistics may leave no pooled penalty that solves; each agent's own ridge fit then stands in, so the row is there.
  assert.ok(out.dp.ridge_model);
  assert.equal(Object.keys(out.dp.relative_change), ['federated', 'fedavg', 'fine_tuned', 'ridge']);
  for (const [method, c] of Object.entries(out.dp.relative_change)) {
    for (const m of ['cpu_busy_pct', 'mem_used_pct']) {
      const plain = out.rmse[method]![m]!;
      const dp = out.dp.rmse[method]![m]!;
      assert.ok(Math.abs(c.rmse[m]! - (dp - plain) / plain) < 1e-12, `${method} ${m}`);
    }
  }
  // Noise σ·C = 3 per weight on 3 agents: the global model of the DP run is not the plain one.
  assert.is.not(out.dp.rmse['fedavg']!['cpu_busy_pct'], out.rmse['fedavg']!['cpu_busy_pct']);
  const text = run([...BASE, '--dp', '--noise-multiplier', '3']);
  assert.is(text.status, 0, text.stderr);
  assert.match(text.stdout, /with differential privacy: ε \d+\.\d{3} at δ 0\.00001 after 3 rounds per agent \(noise multiplier 3, clip 0\.5/);
  assert.match(text.stdout, /mean change of the federated row's RMSE and MAE: [+-]\d+\.\d\d %/);
});

test('DP flags without --dp, or out of range, are usage errors', () => {
  const lone = run([...BASE, '--noise-multiplier', '2']);
  assert.is(lone.status, 64);
  assert.match(lone.stderr, /--noise-multiplier needs --dp/);
  const zero = run([...BASE, '--dp', '--clip-norm', '0']);
  assert.is(zero.status, 64);
  assert.match(zero.stderr, /--clip-norm must be a number > 0, got '0'/);
  const delta = run([...BASE, '--dp', '--delta', '1']);
  assert.is(delta.status, 64);
  assert.match(delta.stderr, /--delta must be a number > 0 and < 1, got '1'/);
});

test.run();
