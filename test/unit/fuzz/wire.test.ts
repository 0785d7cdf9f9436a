import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UpdateAccumulator, aggregate, checkFrame } from '../../../common/crypto/aggregate.js';
import { AgentCipher } from '../../../common/crypto/agent-cipher.js';
import { generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/bundle.js';
import { deriveParams, type DerivedParams } from '../../../common/crypto/params.js';
import { HEADER_BYTES, KIND_EXPANDED, MAX_CLIENTS, MAX_PARAM_COUNT, frameBytes, parseFrame } from '../../../common/crypto/wire.js';
import type { ErrorCode } from '../../../common/errors.js';
import { FUZZ_RUNS, FUZZ_SEED, Tally, applyMutations, arrayBufferBytes, fuzzOptions, mutationArb, refusedWith } from '../../helpers/fuzz.js';

// The ciphertext loaders on hostile frames, extending test/unit/crypto/hostile-inputs.test.ts
// (10,000 seeded-PRNG cases through both loaders) with fast-check: parseFrame and the
// coordinator's checkFrame / UpdateAccumulator.add at FUZZ_RUNS inputs each, the agent's
// decryptAggregate (SEAL: milliseconds a call) at SEAL_RUNS. Inputs: mutations of a valid update
// a valid 3-client aggregate and the same aggregate expanded (wire kind 3: Σ c1 instead of seeds; header fields set to edge values, bit flips in header and
// body, truncation, insertion), and random bytes behind a valid header prefix.
const SEAL_RUNS = Number(process.env.FUZZ_SEAL_RUNS ?? 2_000);
const PARAMS = 300; // one ciphertext: the loaders' cost is per ciphertext, not per parameter
const REFUSED: ReadonlySet<ErrorCode> = new Set(['CRYPTO_MALFORMED_UPDATE', 'CRYPTO_PARAMS_MISMATCH', 'CRYPTO_LAYOUT_MISMATCH', 'CRYPTO_VALUE_OUT_OF_RANGE', 'CRYPTO_DUPLICATE_UPDATE']);
const HEADER_FIELDS = [4, 24, 28, 32, 36];

let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let d: DerivedParams;
let cipher: AgentCipher;
let bases: Uint8Array[];
let frameArb: fc.Arbitrary<Uint8Array>;

test.before(async () => {
  ({ agent, coordinator } = await generateFederation({ federationId: 'fuzz-wire' }));
  d = deriveParams(coordinator.params);
  cipher = await AgentCipher.create(agent);
  const w = new Float32Array(PARAMS).map((_, i) => Math.sin(i) / 4);
  const update = cipher.encryptUpdate(w, 5);
  const three = [update, cipher.encryptUpdate(w, 7), cipher.encryptUpdate(w, 9)];
  bases = [update, aggregate(coordinator, three), aggregate(coordinator, three, { expandAbove: 0 })];
  assert.is(bases[2]![5], KIND_EXPANDED);
  const mutated = fc.tuple(fc.nat({ max: 2 }), mutationArb(HEADER_FIELDS)).map(([i, ms]) => applyMutations(bases[i]!, ms));
  const randomBody = fc.tuple(fc.nat({ max: 2 }), fc.uint8Array({ minLength: 0, maxLength: 64, size: 'max' }), fc.nat()).map(([i, noise, cut]) => {
    // A valid header, then the base body with a run of random bytes written over it at a random place.
    const b = bases[i]!.slice();
    const at = HEADER_BYTES + (cut % (b.length - HEADER_BYTES));
    b.set(noise.subarray(0, b.length - at), at);
    return b;
  });
  frameArb = fc.oneof({ arbitrary: mutated, weight: 3 }, { arbitrary: randomBody, weight: 1 }, { arbitrary: fc.uint8Array({ maxLength: 120, size: 'max' }), weight: 1 });
  console.log(`  wire fuzz: seed ${FUZZ_SEED}, ${FUZZ_RUNS} inputs per parse/add property, ${SEAL_RUNS} through SEAL`);
});
test.after(() => cipher.dispose());

test(`parseFrame (${FUZZ_RUNS}): refused with a CRYPTO_* code, or a header consistent with the length`, () => {
  const tally = new Tally();
  fc.assert(
    fc.property(frameArb, (b) => {
      let h: ReturnType<typeof parseFrame> | undefined;
      const outcome = refusedWith(REFUSED, () => (h = parseFrame(b, d, PARAMS)));
      tally.add(outcome);
      if (outcome === 'accepted') {
        assert.is(h!.paramCount, PARAMS);
        assert.ok(h!.clients >= 1 && h!.clients <= MAX_CLIENTS && h!.totalSamples >= h!.clients);
        assert.is(b.length, frameBytes(d, h!.ciphertextCount, h!.clients, h!.kind));
        if (h!.kind !== KIND_EXPANDED) assert.is(b.length, HEADER_BYTES + h!.ciphertextCount * (d.packedPolyBytes + h!.clients * 64));
      }
    }),
    fuzzOptions(),
  );
  console.log('  parseFrame:', tally.toJSON());
  assert.ok(tally.get('accepted') > 0 && tally.get('CRYPTO_MALFORMED_UPDATE') > FUZZ_RUNS / 4);
});

test(`coordinator: checkFrame and UpdateAccumulator.add (${FUZZ_RUNS}) agree, and a refused frame leaves the sum unchanged`, () => {
  const tally = new Tally();
  const clean = bases[0]!;
  const reference = aggregate(coordinator, [clean]);
  fc.assert(
    fc.property(frameArb, (b) => {
      const checked = refusedWith(REFUSED, () => checkFrame(d, b, PARAMS));
      const acc = new UpdateAccumulator(coordinator, { paramCount: PARAMS });
      acc.add(clean);
      const added = refusedWith(REFUSED, () => acc.add(b));
      // add() also refuses the clean update's replay (same seed) and sums over maxRoundSamples.
      if (added !== 'CRYPTO_DUPLICATE_UPDATE' && added !== 'CRYPTO_VALUE_OUT_OF_RANGE') assert.is(added, checked);
      if (added !== 'accepted') assert.equal(acc.finish(), reference, 'a refused frame changed the sum');
      tally.add(added);
    }),
    fuzzOptions(),
  );
  console.log('  accumulator:', tally.toJSON());
  assert.ok(tally.get('accepted') > 0 && tally.get('CRYPTO_DUPLICATE_UPDATE') > 0);
});

test(`agent: decryptAggregate on hostile frames (${SEAL_RUNS}, SEAL-reaching): refused or a finite result of the layout`, () => {
  const tally = new Tally();
  fc.assert(
    fc.property(frameArb, (b) => {
      let out: ReturnType<AgentCipher['decryptAggregate']> | undefined;
      const outcome = refusedWith(REFUSED, () => (out = cipher.decryptAggregate(b, { paramCount: PARAMS })));
      tally.add(outcome);
      if (outcome === 'accepted') {
        assert.is(out!.weights.length, PARAMS);
        assert.ok(out!.clients >= 1);
      }
    }),
    fuzzOptions(SEAL_RUNS),
  );
  console.log('  decryptAggregate:', tally.toJSON());
  assert.ok(tally.get('accepted') > 0);
});

test('length fields claiming 2^26 parameters and 2^16 clients are refused before anything is allocated', () => {
  const before = arrayBufferBytes();
  let refused = 0;
  for (const [paramCount, clients] of [[MAX_PARAM_COUNT, MAX_CLIENTS], [MAX_PARAM_COUNT, 1], [PARAMS, MAX_CLIENTS], [2 ** 31, 2 ** 31]] as const) {
    const b = bases[1]!.slice();
    const v = new DataView(b.buffer);
    v.setUint32(24, paramCount >>> 0, true);
    v.setUint32(28, Math.ceil(paramCount / d.slots) >>> 0, true);
    v.setUint32(32, clients >>> 0, true);
    v.setUint32(36, Math.min(clients, d.params.maxRoundSamples) >>> 0, true);
    for (let i = 0; i < 250; i++) {
      assert.is.not(refusedWith(REFUSED, () => new UpdateAccumulator(coordinator).add(b)), 'accepted');
      assert.is.not(refusedWith(REFUSED, () => cipher.decryptAggregate(b)), 'accepted');
      refused += 2;
    }
  }
  const grown = arrayBufferBytes() - before;
  assert.is(refused, 2000);
  // 2^26 parameters would be a 1.5 GiB frame and a 512 MiB sum: anything near that shows.
  assert.ok(grown < 16 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
});

test.run();
