import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RDP_ORDERS, rdpOfStep } from '../../../common/privacy/rdp.js';
import { combinedNoiseMultiplier, lossesPerRound, privatiseLoss } from '../../../common/privacy/losses.js';
import type { UniformSource } from '../../../common/privacy/gaussian.js';
import { parseFederationModel } from '../../../common/protocol/federation-model.js';

// The Gaussian mechanism on reported validation losses (common/privacy/losses.ts): what is
// clipped, how much noise a round's k losses get, and that a round's update and losses compose
// into one Gaussian mechanism of the combined multiplier.

/** A source whose Box–Muller pair gives exactly z: u1 = exp(−z²/2), u2 = 1 (cos 2π = 1), for z ≥ 0. */
function fixedNormal(z: number): UniformSource {
  let i = 0;
  return { next: () => (i++ % 2 === 0 ? Math.exp((-z * z) / 2) : 1) };
}

test('losses per round: ridge heads × 6 penalties, FedAvg step 1 two (baseLoss and ack), later one, final none', () => {
  const m = parseFederationModel({ metrics: ['cpu', 'mem'] });
  assert.is(lossesPerRound('ridge', 0, m), 12, 'two heads (one per metric) × 6 penalties');
  assert.is(lossesPerRound('fedavg', 0, m), 2);
  assert.is(lossesPerRound('fedavg', 3, m), 1);
  assert.is(lossesPerRound('final', 0, m), 0);
});

test('a loss is clipped to [0, L], noised by σ_l·L·√k, and clamped to [0, L]; NaN counts as L', () => {
  const o = { clip: 2, noiseMultiplier: 0.1, perRound: 4 };
  assert.ok(Math.abs(privatiseLoss(0.9, { ...o, source: fixedNormal(1) }) - (0.9 + 0.1 * 2 * 2)) < 1e-12, 'σ_l·L·√k = 0.4 per unit of noise');
  assert.ok(Math.abs(privatiseLoss(0.9, { ...o, source: fixedNormal(0) }) - 0.9) < 1e-12);
  assert.is(privatiseLoss(50, { ...o, source: fixedNormal(0) }), 2, 'clipped to L');
  assert.is(privatiseLoss(Infinity, { ...o, source: fixedNormal(0) }), 2);
  assert.is(privatiseLoss(Number.NaN, { ...o, source: fixedNormal(0) }), 2, 'not computable: reported as L');
  assert.is(privatiseLoss(1.9, { ...o, source: fixedNormal(3) }), 2, 'clamped after the noise');
  assert.throws(() => privatiseLoss(1, { ...o, clip: 0 }), /loss clip must be a positive number/);
  assert.throws(() => privatiseLoss(1, { ...o, perRound: 0 }), /losses per round must be a positive integer/);
});

test("a round's update and losses compose: RDP of the combined multiplier = the sum of both mechanisms' RDP", () => {
  const z = combinedNoiseMultiplier(6, 12);
  assert.ok(Math.abs(z - 1 / Math.sqrt(1 / 36 + 1 / 144)) < 1e-12);
  for (const a of RDP_ORDERS) assert.ok(Math.abs(rdpOfStep(1, z, a) - (rdpOfStep(1, 6, a) + rdpOfStep(1, 12, a))) < 1e-9 * rdpOfStep(1, z, a), `order ${a}`);
  assert.throws(() => combinedNoiseMultiplier(6, 0), /noise multipliers must be positive/);
});

test.run();
