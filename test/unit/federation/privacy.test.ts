import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { PrivacyAccountant } from '../../../common/privacy/accountant.js';
import { combinedNoiseMultiplier } from '../../../common/privacy/losses.js';
import { modelConfigHash, parseFederationModel } from '../../../common/protocol/federation-model.js';
import type { Announce } from '../../../common/protocol/messages.js';
import { fileAccountantStore, memoryAccountantStore, PRIVACY_STATE_FILE, UpdatePrivacy, validateSettings, type PrivacySettings } from '../../../agent/federation/privacy.js';
import { tempDir } from '../../helpers/paths.js';

const tmp = tempDir('icosfl-privacy-');
test.after(() => tmp.cleanup());
const logger = pino({ level: 'silent' });
const model = parseFederationModel({ metrics: ['cpu_busy_pct'] });
const SETTINGS: PrivacySettings = { enabled: true, noise_multiplier: 2, clip_norm: 1, ridge_clip_norm: 1, delta: 1e-5, epsilon_budget: 0, sampling_rate: 1, loss_noise_multiplier: 4, loss_clip: 2 };
/** ε after n rounds at SETTINGS (update and losses composed): the budget of each test lies between two of these. */
const epsAfter = (n: number, s = SETTINGS) => new PrivacyAccountant([{ samplingRate: s.sampling_rate, noiseMultiplier: combinedNoiseMultiplier(s.noise_multiplier, s.loss_noise_multiplier), steps: n }]).spent(s.delta).epsilon;

function announce(round: number): Announce {
  return {
    type: 'announce', federation: 'f', session: 1, round, phase: round === 1 ? 'ridge' : 'fedavg', step: round === 1 ? 0 : round - 1, base: 0,
    deadline: 1e13, issuedAt: 0, codec: 'plaintext', keyId: '', weightCap: 100, model, configHash: modelConfigHash(model),
  };
}

test('rounds are charged until the next one would pass the budget; a retry of the same round is not charged twice', () => {
  const budget = (epsAfter(3) + epsAfter(4)) / 2;
  const p = new UpdatePrivacy({ settings: { ...SETTINGS, epsilon_budget: budget }, store: memoryAccountantStore(), logger });
  for (const r of [1, 2, 3]) {
    const d = p.admit(announce(r));
    assert.ok(d.contribute, `round ${r} contributes`);
    assert.is(p.admit(announce(r)), d, 'the same decision for a retry');
  }
  assert.is(p.status().rounds_charged, 3);
  assert.ok(Math.abs(p.status().epsilon - epsAfter(3)) < 1e-12);
  const d4 = p.admit(announce(4));
  assert.not.ok(d4.contribute);
  if (!d4.contribute) assert.match(d4.reason, /^privacy budget spent: ε \d+\.\d{3} of .* after 3 rounds; one more would make it/);
  const st = p.status();
  assert.is(st.state, 'budget-spent');
  assert.is(st.rounds_charged, 3, 'a refused round is not charged');
  assert.ok(Math.abs(st.epsilon_per_round - epsAfter(1)) < 1e-12);
});

test('the release clips and noises: FedAvg around its base with clip_norm, statistics with ridge_clip_norm', () => {
  const p = new UpdatePrivacy({ settings: { ...SETTINGS, noise_multiplier: 1e-9, clip_norm: 0.5, ridge_clip_norm: 2, epsilon_budget: Infinity }, store: memoryAccountantStore(), logger });
  const d = p.admit(announce(1));
  assert.ok(d.contribute);
  if (!d.contribute) return;
  const base = Float32Array.from([1, 1]);
  const out = d.release(Float32Array.from([4, 5]), { base }); // Δ (3, 4), norm 5 → (0.3, 0.4)
  assert.ok(Math.abs(out[0]! - 1.3) < 1e-6 && Math.abs(out[1]! - 1.4) < 1e-6, String(out));
  const stats = d.release(Float32Array.from([30, 40])); // norm 50 → 2
  assert.ok(Math.abs(stats[0]! - 1.2) < 1e-6 && Math.abs(stats[1]! - 1.6) < 1e-6, String(stats));
  const limited = d.release(Float32Array.from([30, 40]), { limit: 1.5 }); // (1.2, 1.6) → (1.2, 1.5)
  assert.ok(Math.abs(limited[0]! - 1.2) < 1e-6 && limited[1] === 1.5, String(limited));
  assert.is(p.status().rounds_contributed, 3);
});

test('reported losses: noised (bounded sample: mean and spread as calibrated), only for rounds this agent was charged for', () => {
  // σ_l 0.05 × L 2 × √1 (a FedAvg round after step 1 reports one loss): std 0.1, far from the [0, 2] clamp around 0.9.
  const p = new UpdatePrivacy({ settings: { ...SETTINGS, loss_noise_multiplier: 0.05, epsilon_budget: Infinity }, store: memoryAccountantStore(), logger });
  assert.is(p.lossRelease(3), undefined, 'no loss goes out for a round never admitted (e.g. before a restart)');
  const d = p.admit({ ...announce(3), base: 2 });
  assert.ok(d.contribute);
  const release = p.lossRelease(3)!;
  const n = 4000;
  const xs = Array.from({ length: n }, () => release(0.9));
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  const want = 0.05 * 2;
  assert.ok(Math.abs(mean - 0.9) < (5 * want) / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(std - want) < (5 * want) / Math.sqrt(2 * n), `std ${std}, want ${want}`);
  assert.ok(xs.every((x) => x !== 0.9), 'every report is noised');
  // Step 1 reports two losses (baseLoss and the acknowledgement's): √2 more noise each.
  p.admit({ ...announce(4), base: 0 });
  const two = Array.from({ length: n }, () => p.lossRelease(4)!(0.9));
  const std2 = Math.sqrt(two.reduce((a, b) => a + (b - 0.9) ** 2, 0) / n);
  assert.ok(Math.abs(std2 - want * Math.SQRT2) < (5 * want * Math.SQRT2) / Math.sqrt(2 * n), `std ${std2}`);
  const st = p.status();
  assert.equal([st.loss_noise_multiplier, st.loss_clip, st.round_noise_multiplier], [0.05, 2, combinedNoiseMultiplier(2, 0.05)]);
  const refused = new UpdatePrivacy({ settings: { ...SETTINGS, epsilon_budget: 1e-9 }, store: memoryAccountantStore(), logger });
  assert.not.ok(refused.admit(announce(5)).contribute);
  assert.is(refused.lossRelease(5), undefined, 'a withheld round reports no loss');
});

test('the accountant charges each round for its update and its losses together', () => {
  const p = new UpdatePrivacy({ settings: { ...SETTINGS, epsilon_budget: Infinity }, store: memoryAccountantStore(), logger });
  for (const r of [1, 2, 3]) p.admit(announce(r));
  const updatesOnly = new PrivacyAccountant([{ samplingRate: 1, noiseMultiplier: SETTINGS.noise_multiplier, steps: 3 }]).spent(SETTINGS.delta).epsilon;
  assert.ok(Math.abs(p.status().epsilon - epsAfter(3)) < 1e-12);
  assert.ok(p.status().epsilon > updatesOnly, 'the losses cost ε too');
});

test('the accountant file survives a restart: spent budget is not reset', () => {
  const dir = join(tmp.dir, 'restart');
  mkdirSync(dir);
  const settings = { ...SETTINGS, epsilon_budget: (epsAfter(3) + epsAfter(4)) / 2 };
  const first = new UpdatePrivacy({ settings, store: fileAccountantStore(dir), logger });
  assert.ok(first.admit(announce(1)).contribute && first.admit(announce(2)).contribute);
  const second = new UpdatePrivacy({ settings, store: fileAccountantStore(dir), logger });
  assert.is(second.status().rounds_charged, 2);
  assert.ok(Math.abs(second.status().epsilon - epsAfter(2)) < 1e-12);
  assert.ok(second.admit(announce(3)).contribute);
  assert.not.ok(second.admit(announce(4)).contribute);
  const third = new UpdatePrivacy({ settings, store: fileAccountantStore(dir), logger });
  assert.not.ok(third.admit(announce(5)).contribute, 'still spent after another restart');
  assert.is(third.status().state, 'budget-spent');
  const file = JSON.parse(readFileSync(join(dir, PRIVACY_STATE_FILE), 'utf8')) as { history: unknown; rounds: number };
  const charged = combinedNoiseMultiplier(2, SETTINGS.loss_noise_multiplier);
  assert.equal(file.history, [{ samplingRate: 1, noiseMultiplier: charged, steps: 3 }]);
  // A changed noise multiplier composes as a second group, priced with the old one.
  const louder = new UpdatePrivacy({ settings: { ...settings, noise_multiplier: 50, epsilon_budget: 1e9 }, store: fileAccountantStore(dir), logger });
  assert.ok(louder.admit(announce(6)).contribute);
  const both = new PrivacyAccountant([{ samplingRate: 1, noiseMultiplier: charged, steps: 3 }, { samplingRate: 1, noiseMultiplier: combinedNoiseMultiplier(50, SETTINGS.loss_noise_multiplier), steps: 1 }]).spent(1e-5).epsilon;
  assert.ok(Math.abs(louder.status().epsilon - both) < 1e-12);
});

test('a corrupt or unreadable accountant file is not reset to zero: the agent contributes nothing and says why', () => {
  for (const [what, content] of [['garbage', '{"format":1,"hist'], ['negative steps', '{"format":1,"history":[{"samplingRate":1,"noiseMultiplier":2,"steps":-4}],"rounds":0,"updatedAt":"x"}']] as const) {
    const dir = join(tmp.dir, `corrupt-${what.replace(' ', '-')}`);
    mkdirSync(dir);
    const path = join(dir, PRIVACY_STATE_FILE);
    writeFileSync(path, content);
    assert.throws(() => fileAccountantStore(dir).load(), (e: unknown) => isIcosflError(e, 'STATE_CORRUPT') && /is not a valid accountant file/.test((e as Error).message));
    const p = new UpdatePrivacy({ settings: { ...SETTINGS, epsilon_budget: 1e9 }, store: fileAccountantStore(dir), logger });
    const d = p.admit(announce(1));
    assert.not.ok(d.contribute, what);
    if (!d.contribute) assert.match(d.reason, new RegExp(`${PRIVACY_STATE_FILE} is not a valid accountant file: this agent sends no update until the file is restored`));
    assert.is(p.status().state, 'state-unusable');
    assert.is(readFileSync(path, 'utf8'), content, 'the file is left for the operator');
  }
});

test('an accountant file that cannot be written stops contributions (nothing goes out unrecorded)', () => {
  // The state directory vanished (an unmounted disk): the atomic write fails with ENOENT.
  const dir = join(tmp.dir, 'vanished');
  const p = new UpdatePrivacy({ settings: { ...SETTINGS, epsilon_budget: 1e9 }, store: fileAccountantStore(dir), logger });
  const d = p.admit(announce(1));
  assert.not.ok(d.contribute);
  if (!d.contribute) assert.match(d.reason, /privacy-accountant\.json could not be written \(ENOENT\)/);
  assert.is(p.status().state, 'state-unusable');
  assert.not.ok(p.admit(announce(2)).contribute, 'and stays so');
});

test('sampling_rate < 1: the agent draws its own participation, and every round is charged at that rate', () => {
  const draws = [0.2, 0.9, 0.5, 0.31];
  let k = 0;
  const random = { next: () => draws[k++ % draws.length]! };
  const settings = { ...SETTINGS, sampling_rate: 0.3, epsilon_budget: 1e9 };
  const p = new UpdatePrivacy({ settings, store: memoryAccountantStore(), logger, random });
  const taken = [1, 2, 3, 4].map((r) => p.admit(announce(r)).contribute);
  assert.equal(taken, [true, false, false, false]);
  const d2 = p.admit(announce(2));
  if (!d2.contribute) assert.match(d2.reason, /not sampled this round \(privacy\.sampling_rate 0\.3\)/);
  assert.is(p.status().rounds_charged, 4);
  assert.ok(Math.abs(p.status().epsilon - epsAfter(4, settings)) < 1e-12);
  assert.ok(epsAfter(4, settings) < epsAfter(4), 'subsampling is credited');
});

test('settings out of range are CONFIG_INVALID naming the key', () => {
  for (const [key, value] of [['noise_multiplier', 0], ['clip_norm', -1], ['delta', 1], ['sampling_rate', 0], ['epsilon_budget', 0], ['loss_noise_multiplier', 0], ['loss_clip', Infinity]] as const) {
    assert.throws(() => validateSettings({ ...SETTINGS, epsilon_budget: 1, [key]: value }), (e: unknown) => isIcosflError(e, 'CONFIG_INVALID') && (e as Error).message.startsWith(`privacy.${key} must be`), key);
  }
});

test.run();
