import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, aggregate, generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/index.js';
import { isIcosflError } from '../../../common/errors.js';
import { EncryptedFedAvgRound, ckksFedAvg } from '../../../coordinator/strategy/ckks-fedavg.js';
import { fedAvg, type ClientUpdate } from '../../../coordinator/strategy/fedavg.js';

// 10,000 parameters = 3 ciphertexts (4096 values each), the last one partly filled.
const PARAMS = 10_000;
let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let cipher: AgentCipher;

test.before(async () => {
  ({ agent, coordinator } = await generateFederation({ federationId: 'equivalence' }));
  cipher = await AgentCipher.create(agent);
});
test.after(() => cipher.dispose());

function randomClient(): ClientUpdate {
  const weights = new Float32Array(PARAMS);
  for (let i = 0; i < PARAMS; i++) weights[i] = (Math.random() * 2 - 1) * 10;
  weights[0] = 10;
  weights[1] = -10;
  return { weights, samples: 100 + Math.floor(Math.random() * 2000) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const agents of [1, 2, 10, 100]) {
  test(`aggregate of ${agents} agent(s) with random dropouts = plaintext FedAvg within 1e-4 (|w| ≤ 10)`, () => {
    const clients = Array.from({ length: agents }, randomClient);
    // Each agent drops out with probability 0.2, but at least one answers.
    const answered = clients.filter((_, k) => k === 0 || Math.random() >= 0.2);
    const updates = answered.map((c) => cipher.encryptUpdate(c.weights, c.samples));
    const bytes = ckksFedAvg(coordinator, updates, { paramCount: PARAMS });
    const out = cipher.decryptAggregate(bytes, { paramCount: PARAMS });
    const expected = fedAvg(answered);
    const err = maxAbsDiff(out.weights, expected);
    console.log(`  ${agents} agents, ${answered.length} answered: max abs error ${err.toExponential(2)}`);
    assert.is(out.clients, answered.length);
    assert.is(out.totalSamples, answered.reduce((s, c) => s + c.samples, 0));
    assert.ok(err <= 1e-4, `max abs error ${err}`);
    // Dropouts must not count: the average over everybody (had they all answered) differs.
    if (answered.length < clients.length) assert.ok(maxAbsDiff(out.weights, fedAvg(clients)) > 1e-3);
  });
}

test('partial sums (an intermediate aggregator) give the same average as one flat sum', () => {
  const clients = Array.from({ length: 6 }, randomClient);
  const updates = clients.map((c) => cipher.encryptUpdate(c.weights, c.samples));
  const left = aggregate(coordinator, updates.slice(0, 2));
  const right = aggregate(coordinator, updates.slice(2));
  const nested = cipher.decryptAggregate(aggregate(coordinator, [left, right]));
  assert.is(nested.clients, 6);
  assert.ok(maxAbsDiff(nested.weights, fedAvg(clients)) <= 1e-4);
});

test('the agent refuses values that could overflow, before encrypting', () => {
  const w = new Float32Array(10);
  const expectCode = (fn: () => unknown, what: string): void => {
    try {
      fn();
      assert.unreachable(`${what} was accepted`);
    } catch (err) {
      assert.ok(isIcosflError(err, 'CRYPTO_VALUE_OUT_OF_RANGE'), `${what}: ${String(err)}`);
    }
  };
  for (const bad of [16.5, -1e6, Number.NaN, Number.POSITIVE_INFINITY]) {
    w[3] = bad;
    expectCode(() => cipher.encryptUpdate(w, 10), `weight ${bad}`);
  }
  w[3] = 16; // exactly maxAbsWeight is fine
  cipher.encryptUpdate(w, 10);
  for (const n of [0, -1, 1.5, 2 ** 20 + 1, Number.NaN]) expectCode(() => cipher.encryptUpdate(w, n), `sampleCount ${n}`);
  assert.throws(() => cipher.encryptUpdate(new Float64Array(4) as unknown as Float32Array, 1), (e: unknown) => e instanceof TypeError && /Float32Array/.test((e as Error).message));
});

test('the coordinator refuses a sum whose Σ n_k could overflow, and keeps the sum it had', () => {
  const w = new Float32Array(10).fill(1);
  const round = new EncryptedFedAvgRound(coordinator, { paramCount: 10 });
  round.add(cipher.encryptUpdate(w, 2 ** 20 - 5));
  try {
    round.add(cipher.encryptUpdate(w, 6));
    assert.unreachable('Σ n_k over maxRoundSamples was accepted');
  } catch (err) {
    assert.ok(isIcosflError(err, 'CRYPTO_VALUE_OUT_OF_RANGE'), String(err));
  }
  round.add(cipher.encryptUpdate(w, 5));
  const out = cipher.decryptAggregate(round.result());
  assert.is(out.totalSamples, 2 ** 20);
  assert.ok(maxAbsDiff(out.weights, w) <= 1e-4);
});

test('duplicates are refused and too few clients fail the round', () => {
  const u = cipher.encryptUpdate(new Float32Array(10), 3);
  const round = new EncryptedFedAvgRound(coordinator, { minClients: 2 });
  round.add(u);
  assert.throws(() => round.add(u.slice()), (e: unknown) => isIcosflError(e, 'CRYPTO_DUPLICATE_UPDATE'));
  assert.throws(() => round.result(), (e: unknown) => isIcosflError(e, 'CRYPTO_TOO_FEW_CLIENTS'));
  assert.is(round.clients, 1);
});

test('wire size is under 12 bytes per parameter for a 100,000-parameter model', () => {
  const bytes = cipher.encryptUpdate(new Float32Array(100_000), 1);
  assert.ok(bytes.length / 100_000 <= 12, `${bytes.length / 100_000} B/param`);
});

test.run();
