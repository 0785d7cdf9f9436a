import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UpdateAccumulator, aggregate, checkFrame } from '../../../common/crypto/aggregate.js';
import { AgentCipher } from '../../../common/crypto/agent-cipher.js';
import { generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/bundle.js';
import { SEED_BYTES, deriveParams, type DerivedParams } from '../../../common/crypto/params.js';
import { loadSeal, type SEALLibrary } from '../../../common/crypto/seal-loader.js';
import { SeedExpander, expandSeed } from '../../../common/crypto/seed-expansion.js';
import { HEADER_BYTES, KIND_AGGREGATE, KIND_EXPANDED, expandAboveClients, parseFrame } from '../../../common/crypto/wire.js';
import { isIcosflError } from '../../../common/errors.js';

// Wire kind 3 (docs/decisions.md D18): the adder's own seed expansion against SEAL's, bit for bit;
// an expanded aggregate decrypts to exactly what the seeded one does; its size; mixing kinds.
let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let d: DerivedParams;
let cipher: AgentCipher;
const PARAMS = 5000; // two ciphertexts

test.before(async () => {
  ({ agent, coordinator } = await generateFederation({ federationId: 'expanded' }));
  d = deriveParams(coordinator.params);
  cipher = await AgentCipher.create(agent);
});
test.after(() => cipher.dispose());

/**
 * SEAL's c1 for each seed: a seeded ciphertext of SEAL's own with the seed written in, loaded (SEAL
 * expands it) and saved whole. With `otherQ`, under that prime (written into SEAL's saved
 * parameters in place of the federation's) and a fresh key.
 */
function sealExpansion(seal: SEALLibrary, seeds: Uint8Array[], otherQ?: bigint): Float64Array[] {
  const owned: { delete(): void }[] = [];
  const own = <T extends { delete(): void }>(o: T) => (owned.push(o), o);
  try {
    const parms = own(seal.EncryptionParameters(seal.SchemeType.ckks));
    parms.setPolyModulusDegree(d.n);
    parms.setCoeffModulus(own(seal.CoeffModulus.Create(d.n, Int32Array.from([d.qBits]))));
    if (otherQ !== undefined) {
      const saved = parms.saveArray(seal.ComprModeType.none);
      const v = new DataView(saved.buffer, saved.byteOffset, saved.byteLength);
      let at = -1;
      for (let i = 0; i + 8 <= saved.length; i++) if (v.getBigUint64(i, true) === BigInt(d.q)) at = i;
      assert.ok(at > 0, "q not found in SEAL's saved parameters");
      v.setBigUint64(at, otherQ, true);
      parms.loadArray(saved);
      assert.is(parms.coeffModulus[0], otherQ);
    }
    const context = own(seal.Context(parms, true, seal.SecurityLevel.tc128));
    assert.ok(context.parametersSet());
    let sk = own(seal.SecretKey());
    let keygen;
    if (otherQ === undefined) {
      sk.loadArray(context, agent.secretKey);
      keygen = own(seal.KeyGenerator(context, sk));
    } else {
      keygen = own(seal.KeyGenerator(context));
      sk = own(keygen.secretKey());
    }
    const encryptor = own(seal.Encryptor(context, own(keygen.createPublicKey()), sk));
    const plain = own(seal.PlainText());
    own(seal.CKKSEncoder(context)).encode(new Float64Array(d.n / 2), d.scale, plain);
    const serializable = encryptor.encryptSymmetricSerializable(plain);
    const template = serializable.saveArray(seal.ComprModeType.none);
    serializable.delete();
    const seedAt = 113 + 8 * d.n + 17;
    assert.is(template[seedAt - 1], 1, 'SEAL seeds with Blake2xb (prng type 1)');
    const ct = own(seal.CipherText());
    const c1 = seeds.map((seed) => {
      template.set(seed, seedAt);
      ct.loadArray(context, template);
      const full = ct.saveArray(seal.ComprModeType.none);
      const v = new DataView(full.buffer, full.byteOffset, full.byteLength);
      return Float64Array.from({ length: d.n }, (_, i) => Number(v.getBigUint64(113 + 8 * d.n + 8 * i, true)));
    });
    return c1;
  } finally {
    for (const o of owned.reverse()) o.delete();
  }
}

function seedOf(i: number): Uint8Array {
  const seed = new Uint8Array(SEED_BYTES);
  new DataView(seed.buffer).setUint32(0, i, true);
  seed[63] = 0xa5;
  return seed;
}

function assertSame(mine: Float64Array, sealC1: Float64Array, what: string): void {
  for (let i = 0; i < mine.length; i++) if (mine[i] !== sealC1[i]) assert.unreachable(`${what}: coefficient ${i} is ${mine[i]}, SEAL's ${sealC1[i]}`);
}

test("seed expansion is bit-exact with SEAL under the federation's q, one by one and summed", async () => {
  const seal = await loadSeal();
  const seeds = Array.from({ length: 24 }, (_, i) => seedOf(i));
  const c1 = sealExpansion(seal, seeds);
  seeds.forEach((seed, k) => assertSame(expandSeed(seed, d.n, d.q), c1[k]!, `seed ${k}`));
  const e = new SeedExpander(d.n, d.q);
  for (const s of seeds) e.add(s);
  const sum = new Float64Array(d.n);
  e.reduceInto(sum, 0);
  const want = new Float64Array(d.n);
  for (const c of c1) for (let i = 0; i < d.n; i++) want[i] = (want[i]! + c[i]!) % d.q;
  assertSame(sum, want, 'sum');
});

test('seed expansion redraws exactly as SEAL does (under a prime where draws are refused often)', async () => {
  // Under the federation's q a draw is refused once in 2^30 (2^64 mod q is small, as for every
  // prime SEAL picks just below 2^47); under this NTT prime just above 2^46 about 1.6 % of seeds
  // need a redraw.
  const q = 70368744210433n;
  assert.is(q % BigInt(2 * d.n), 1n);
  const seal = await loadSeal();
  const seeds: Uint8Array[] = [];
  for (let i = 0; i < 2000 && seeds.length < 4; i++) {
    const e = new SeedExpander(d.n, Number(q));
    e.add(seedOf(i));
    if (e.redraws > 0) seeds.push(seedOf(i));
  }
  assert.ok(seeds.length >= 2, `${seeds.length} seeds with a redraw among 2000`);
  const c1 = sealExpansion(seal, seeds, q);
  seeds.forEach((seed, k) => assertSame(expandSeed(seed, d.n, Number(q)), c1[k]!, `seed with redraws ${k}`));
});

test('an expanded aggregate decrypts to exactly the seeded one, at two polynomials per ciphertext', () => {
  const ws = [0.25, -0.5, 1.5, 0.125].map((x) => Float32Array.from({ length: PARAMS }, (_, i) => x * Math.sin(i)));
  const updates = ws.map((w, k) => cipher.encryptUpdate(w, k + 2));
  const seeded = aggregate(coordinator, updates);
  const expanded = aggregate(coordinator, updates, { expandAbove: 0 });
  assert.is(seeded[5], KIND_AGGREGATE);
  assert.is(expanded[5], KIND_EXPANDED);
  assert.is(expanded.length, HEADER_BYTES + 2 * 2 * d.packedPolyBytes);
  assert.ok(expanded.length <= 2 * updates[0]!.length, `${expanded.length} bytes against an update of ${updates[0]!.length}`);
  const a = cipher.decryptAggregate(seeded, { paramCount: PARAMS });
  const b = cipher.decryptAggregate(expanded, { paramCount: PARAMS });
  assert.is(b.clients, 4);
  assert.is(b.totalSamples, 2 + 3 + 4 + 5);
  for (let i = 0; i < PARAMS; i++) if (a.weights[i] !== b.weights[i]) assert.unreachable(`weight ${i}: ${a.weights[i]} vs ${b.weights[i]}`);
  // And it is the weighted FedAvg.
  for (let i = 0; i < PARAMS; i += 97) {
    const want = ws.reduce((s, w, k) => s + (k + 2) * w[i]!, 0) / 14;
    assert.ok(Math.abs(b.weights[i]! - want) < 1e-3, `weight ${i}: ${b.weights[i]} vs ${want}`);
  }
});

test('partial sums of either kind add up to the one-shot sum; an aggregate expands itself past the break-even count', () => {
  const w = Float32Array.from({ length: 300 }, (_, i) => Math.cos(i) / 3);
  const threshold = expandAboveClients(d);
  assert.is(threshold, 376);
  const updates = Array.from({ length: threshold + 1 }, () => cipher.encryptUpdate(w, 1));
  const half = Math.floor(updates.length / 2);
  const p1 = aggregate(coordinator, updates.slice(0, half)); // seeded: below the threshold
  const p2 = aggregate(coordinator, updates.slice(half, -1), { expandAbove: 0 });
  assert.is(p1[5], KIND_AGGREGATE);
  const leader = new UpdateAccumulator(coordinator, { paramCount: 300 });
  leader.add(p1);
  leader.add(p2);
  leader.add(updates.at(-1)!);
  const combined = leader.finish();
  const oneShot = aggregate(coordinator, updates);
  assert.is(oneShot[5], KIND_EXPANDED, `${updates.length} clients pass the threshold by themselves`);
  assert.equal(combined, oneShot, 'the same bytes however the sum was split');
  assert.is(parseFrame(combined, d, 300).clients, threshold + 1);
  const out = cipher.decryptAggregate(combined, { paramCount: 300 });
  for (let i = 0; i < 300; i += 17) assert.ok(Math.abs(out.weights[i]! - w[i]!) < 1e-3);
});

test('an expanded aggregate is refused twice, and with a c1 residue ≥ q by both the adder and the agent', () => {
  const u = [cipher.encryptUpdate(new Float32Array(300).fill(0.5), 3), cipher.encryptUpdate(new Float32Array(300).fill(0.25), 3)];
  const x = aggregate(coordinator, u, { expandAbove: 0 });
  const acc = new UpdateAccumulator(coordinator);
  acc.add(x);
  try {
    acc.add(x);
    assert.unreachable('a second copy was added');
  } catch (err) {
    assert.ok(isIcosflError(err, 'CRYPTO_DUPLICATE_UPDATE'), String(err));
  }
  // Residue 0 of c1 set to all ones (≥ q): low word 0xffffffff, high 15 bits all set.
  const bad = x.slice();
  const c1 = HEADER_BYTES + d.packedPolyBytes;
  bad.fill(0xff, c1, c1 + 4);
  bad[c1 + d.n * 4] = 0xff;
  bad[c1 + d.n * 4 + 1] |= 0x7f;
  const before = acc.finish();
  for (const [side, fn] of [
    ['adder', () => acc.add(bad)],
    ['checkFrame', () => checkFrame(d, bad)],
    ['agent', () => cipher.decryptAggregate(bad)],
  ] as const) {
    try {
      fn();
      assert.unreachable(`${side} accepted it`);
    } catch (err) {
      assert.ok(isIcosflError(err, 'CRYPTO_MALFORMED_UPDATE'), `${side}: ${String(err)}`);
      assert.match((err as Error).message, /residue 0 is not below the coefficient modulus/);
    }
  }
  assert.equal(acc.finish(), before, 'the refused frame changed the sum');
  // Truncated by one byte: the length check names both lengths.
  try {
    parseFrame(x.subarray(0, x.length - 1), d);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, new RegExp(`truncated: ${x.length - 1} bytes, the header announces ${x.length}`));
  }
});

test('SeedExpander refuses bad arguments by name', () => {
  assert.throws(() => new SeedExpander(100, d.q), /n must be a positive multiple of 8/);
  assert.throws(() => new SeedExpander(d.n, 1000), /q must be an integer in \(2\^32, 2\^52\)/);
  assert.throws(() => new SeedExpander(d.n, d.q).add(new Uint8Array(32)), /seed must be 64 bytes, got 32/);
  assert.throws(() => new UpdateAccumulator(coordinator, { expandAbove: -1 }), /expandAbove must be an integer ≥ 0/);
});

test.run();
