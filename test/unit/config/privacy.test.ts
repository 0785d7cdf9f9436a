import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { modelConfigHash, parseFederationModel } from '../../../common/protocol/federation-model.js';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { DEFAULTS } from '../../../agent/config/schema.js';
import { formatPrivacy } from '../../../agent/commands/status.js';
import { diffConfig } from '../../../agent/daemon/config-diff.js';
import { memoryAccountantStore, UpdatePrivacy } from '../../../agent/federation/privacy.js';
import { FIXTURES } from '../../helpers/paths.js';

const ABSENT = join(FIXTURES, 'config', 'absent.toml');
const load = (sets: string[]) => loadAgentConfig({ env: {}, defaultPath: ABSENT, sets });

test('[privacy] defaults, overrides, and out-of-range values named by key', () => {
  const c = load([]);
  assert.equal(c.privacy, DEFAULTS.privacy);
  assert.equal(load(['privacy.enabled=true', 'privacy.noise_multiplier=3']).privacy.noise_multiplier, 3);
  for (const [set, message] of [
    ['privacy.noise_multiplier=0', /privacy\.noise_multiplier \(flag --set privacy\.noise_multiplier\): must be > 0/],
    ['privacy.sampling_rate=1.5', /privacy\.sampling_rate .*must be ≤ 1/],
    ['privacy.delta=0.5', /privacy\.delta .*must be ≤ 0\.01/],
    ['privacy.budget=3', /privacy\.budget/],
  ] as const) {
    try {
      load([set]);
      assert.unreachable(set);
    } catch (err) {
      assert.ok(isIcosflError(err, 'CONFIG_INVALID'), String(err));
      assert.match((err as Error).message, message);
    }
  }
});

test('privacy.* keys apply live (the federation job restarts with them)', () => {
  const a = load([]);
  const b = load(['privacy.epsilon_budget=3']);
  assert.equal(diffConfig(a, b), { live: ['privacy.epsilon_budget'], restart: [] });
});

test('status prints ε of the budget, and says when the budget is spent', () => {
  const model = parseFederationModel({ metrics: ['cpu_busy_pct'] });
  const announce = (round: number) => ({ type: 'announce' as const, federation: 'f', session: 1, round, phase: 'fedavg' as const, step: round, base: 0, deadline: 1e13, issuedAt: 0, codec: 'plaintext' as const, keyId: '', weightCap: 1, model, configHash: modelConfigHash(model) });
  const p = new UpdatePrivacy({ settings: { ...DEFAULTS.privacy, enabled: true, epsilon_budget: 0.8 }, store: memoryAccountantStore(), logger: pino({ level: 'silent' }) });
  assert.ok(p.admit(announce(1)).contribute);
  const line = formatPrivacy(p.status() as unknown as Record<string, unknown>);
  // σ 6 with the losses' σ_l 12: one round is a Gaussian of multiplier 5.37, ε 0.736 (D17).
  assert.match(line, /^DP ε 0\.736 of 0\.8 \(δ 0\.00001, ε 0\.736 per round, 1 rounds charged, 0 contributed since start\)$/);
  assert.not.ok(p.admit(announce(2)).contribute);
  assert.match(formatPrivacy(p.status() as unknown as Record<string, unknown>), /: BUDGET SPENT, no more updates \(forecasting with the current model\)$/);
  assert.is(formatPrivacy({ enabled: false }), 'differential privacy off');
});

test.run();
