import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Forecaster } from '../../../agent/trainer/forecaster.js';
import { denseLayout } from '../../../agent/trainer/model.js';
import { specOf } from '../../../agent/federation/engines.js';
import { AgentCipher, aggregate, generateFederation } from '../../../common/crypto/index.js';
import { dropoutLayout, dropoutSeed, dropUnits, keptCount, keptUnits, rescaleAverage, unitWeights } from '../../../common/protocol/dropout.js';
import { parseFederationModel } from '../../../common/protocol/federation-model.js';
import { seededRandom } from '../../../common/seeded-random.js';
import { plaintextStrategy } from '../../../coordinator/strategy/aggregation.js';

/**
 * Federated dropout's one rule (common/protocol/dropout.ts): which units an agent keeps, what
 * the coordinator counts per unit, and the per-parameter average agents compute from a
 * global, on the plaintext and the CKKS path.
 */
const MODEL = parseFederationModel({ metrics: ['cpu'], lookback: 6, horizon: 3, hiddenUnits: 10, dropoutRate: 0.3 });
const LAYOUT = dropoutLayout(MODEL)!;

test('keptUnits: deterministic per (seed, agent), the rate respected exactly, different per agent and round', () => {
  const spec = { rate: 0.3, seed: 12345 };
  assert.equal(keptUnits(spec, 'edge-1', 10), keptUnits(spec, 'edge-1', 10));
  for (const rate of [0, 0.1, 0.25, 0.5, 0.75, 0.9]) {
    for (const units of [1, 3, 10, 32, 100]) {
      const kept = keptUnits({ rate, seed: 7 }, 'a', units).reduce((a, x) => a + x, 0);
      assert.is(kept, keptCount(rate, units), `rate ${rate}, ${units} units`);
      assert.ok(kept >= 1);
    }
  }
  assert.is(keptCount(0.3, 10), 7);
  assert.is(keptCount(0.9, 1), 1, 'never every unit');
  const masks = new Set<string>();
  for (let i = 0; i < 20; i++) masks.add(keptUnits(spec, `edge-${i}`, 32).join(''));
  assert.ok(masks.size >= 19, 'agents drop different units');
  assert.is.not(keptUnits({ rate: 0.5, seed: dropoutSeed('f', 1) }, 'a', 32).join(''), keptUnits({ rate: 0.5, seed: dropoutSeed('f', 2) }, 'a', 32).join(''));
  assert.is(dropoutSeed('f', 9), dropoutSeed('f', 9));
});

test('keptUnits: every unit is kept by about (1 − rate) of the agents', () => {
  const counts = new Array<number>(16).fill(0);
  const agents = 2000;
  for (let i = 0; i < agents; i++) keptUnits({ rate: 0.25, seed: 99 }, `agent-${i}`, 16).forEach((k, j) => (counts[j]! += k));
  for (const c of counts) assert.ok(Math.abs(c / agents - 0.75) < 0.05, `unit kept by ${c} of ${agents}`);
});

test('keptUnits refuses a bad rate or unit count', () => {
  assert.throws(() => keptUnits({ rate: 0.95, seed: 1 }, 'a', 4), /rate/);
  assert.throws(() => keptUnits({ rate: 0.5, seed: 1 }, 'a', 0), /units/);
});

test("dropoutLayout is the trainer's own layout (agent/trainer/model.ts denseLayout)", () => {
  for (const m of [MODEL, parseFederationModel({ metrics: ['cpu', 'mem'], channelIndependent: false, lookback: 5, horizon: 2, hiddenUnits: 7 })]) {
    const f = new Forecaster(specOf(m), { seed: 1, learningRate: 0.01 });
    try {
      const d = denseLayout(f.model, specOf(m))!;
      const l = dropoutLayout(m)!;
      assert.equal([l.hiddenKernel, l.hiddenBias, l.headKernel, l.size, l.units, l.inputs, l.outputs], [d.hiddenKernel, d.hiddenBias, d.headKernel, d.size, d.hidden, d.inputs, d.outputs]);
    } finally {
      f.dispose();
    }
  }
  assert.is(dropoutLayout(parseFederationModel({ kind: 'linear' })), undefined);
});

/** Three agents' weights and sample counts, with their masks for one round. */
function round() {
  const rnd = seededRandom(5);
  const spec = { rate: 0.3, seed: dropoutSeed('t', 3) };
  const agents = [
    { agent: 'a', samples: 10 },
    { agent: 'b', samples: 30 },
    { agent: 'c', samples: 5 },
  ].map((x) => {
    const kept = keptUnits(spec, x.agent, LAYOUT.units);
    const w = Float32Array.from({ length: LAYOUT.size }, () => rnd() * 2 - 1);
    return { ...x, kept, weights: dropUnits(w, LAYOUT, kept) };
  });
  const base = Float32Array.from({ length: LAYOUT.size }, () => rnd());
  // The per-parameter average, directly: each parameter over the agents that had it.
  const expected = new Float64Array(LAYOUT.size);
  const weightOf = new Float64Array(LAYOUT.size);
  for (const a of agents) {
    const has = new Uint8Array(LAYOUT.size).fill(1);
    const zero = dropUnits(new Float32Array(LAYOUT.size).fill(1), LAYOUT, a.kept);
    for (let i = 0; i < LAYOUT.size; i++) has[i] = zero[i]!;
    for (let i = 0; i < LAYOUT.size; i++) if (has[i]) { expected[i]! += a.samples * a.weights[i]!; weightOf[i]! += a.samples; }
  }
  for (let i = 0; i < LAYOUT.size; i++) expected[i] = weightOf[i]! > 0 ? expected[i]! / weightOf[i]! : base[i]!;
  const total = agents.reduce((s, a) => s + a.samples, 0);
  return { spec, agents, base, expected, total, weights: unitWeights(spec, agents, LAYOUT.units) };
}

test('unitWeights: per unit, Σ n_k of the agents that kept it (the agents\' own masks)', () => {
  const r = round();
  for (let j = 0; j < LAYOUT.units; j++) assert.is(r.weights[j], r.agents.reduce((s, a) => s + (a.kept[j] ? a.samples : 0), 0));
  assert.ok(r.weights.some((w) => w < r.total), 'some unit was dropped by someone');
});

test('plaintext path: FedAvg of the dropped updates, rescaled, is the per-parameter average', () => {
  const r = round();
  const sum = plaintextStrategy().aggregate(r.agents.map((a) => ({ body: new Uint8Array(a.weights.buffer), samples: a.samples })), LAYOUT.size);
  const avg = new Float32Array(sum.bytes.buffer.slice(sum.bytes.byteOffset, sum.bytes.byteOffset + sum.bytes.byteLength));
  const got = rescaleAverage(avg, sum.totalSamples, r.weights, r.base, LAYOUT);
  for (let i = 0; i < LAYOUT.size; i++) assert.ok(Math.abs(got[i]! - r.expected[i]!) <= 1e-6 * Math.max(1, Math.abs(r.expected[i]!)), `parameter ${i}: ${got[i]} vs ${r.expected[i]}`);
});

test('CKKS path: the encrypted sum, decrypted and rescaled, is the per-parameter average', async () => {
  const r = round();
  const fed = await generateFederation();
  const cipher = await AgentCipher.create(fed.agent);
  try {
    const sum = aggregate(fed.coordinator, r.agents.map((a) => cipher.encryptUpdate(a.weights, a.samples)), { paramCount: LAYOUT.size });
    const dec = cipher.decryptAggregate(sum, { paramCount: LAYOUT.size });
    assert.is(dec.totalSamples, r.total);
    const got = rescaleAverage(dec.weights, dec.totalSamples, r.weights, r.base, LAYOUT);
    // CKKS error of Σ n_k·w_k (decryption grid included) is ~1e-2 / Σ n_k here; divided by the smallest unit weight (5).
    for (let i = 0; i < LAYOUT.size; i++) assert.ok(Math.abs(got[i]! - r.expected[i]!) < 2e-3, `parameter ${i}: ${got[i]} vs ${r.expected[i]}`);
  } finally {
    cipher.dispose();
  }
});

test('rescaleAverage: a unit no one kept keeps the base; the linear path is the plain average', () => {
  const avg = Float32Array.from({ length: LAYOUT.size }, (_, i) => i / 100);
  const base = new Float32Array(LAYOUT.size).fill(7);
  const weights = new Array<number>(LAYOUT.units).fill(20);
  weights[2] = 0;
  weights[4] = 10;
  const out = rescaleAverage(avg, 20, weights, base, LAYOUT);
  const unitOf = (j: number) => [...Array.from({ length: LAYOUT.inputs }, (_, i) => LAYOUT.hiddenKernel + i * LAYOUT.units + j), LAYOUT.hiddenBias + j, ...Array.from({ length: LAYOUT.outputs }, (_, o) => LAYOUT.headKernel + j * LAYOUT.outputs + o)];
  for (const x of unitOf(2)) assert.is(out[x], 7);
  for (const x of unitOf(4)) assert.ok(Math.abs(out[x]! - 2 * avg[x]!) < 1e-6);
  // The linear kernel sits between the hidden bias and the head kernel.
  for (let i = LAYOUT.hiddenBias + LAYOUT.units; i < LAYOUT.headKernel; i++) assert.is(out[i], avg[i]);
  assert.throws(() => rescaleAverage(avg, 5, weights, base, LAYOUT), /more than the round/);
  assert.throws(() => rescaleAverage(avg, 20, weights.slice(1), base, LAYOUT), /unit weights/);
});

test.run();
