import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, UpdateAccumulator, aggregate, generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/index.js';
import { isIcosflError, type ErrorCode } from '../../../common/errors.js';

// Every rejection path of the wire format, through the public API, with its stable code.
let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let other: CoordinatorBundle;
let cipher: AgentCipher;
let update: Uint8Array; // 5000 params = 2 ciphertexts (4096 values each), n = 7

test.before(async () => {
  ({ agent, coordinator } = await generateFederation({ federationId: 'wire' }));
  ({ coordinator: other } = await generateFederation({ federationId: 'wire' })); // same id, other key
  cipher = await AgentCipher.create(agent);
  update = cipher.encryptUpdate(new Float32Array(5000).fill(0.5), 7);
});
test.after(() => cipher.dispose());

function mutate(fn: (b: Uint8Array, v: DataView) => void): Uint8Array {
  const b = update.slice();
  fn(b, new DataView(b.buffer));
  return b;
}

function expectBoth(bytes: unknown, code: ErrorCode, message: RegExp, paramCount?: number): void {
  const opts = paramCount === undefined ? {} : { paramCount };
  for (const [side, fn] of [
    ['coordinator', () => new UpdateAccumulator(coordinator, opts).add(bytes as Uint8Array)],
    ['agent', () => cipher.decryptAggregate(bytes as Uint8Array, opts)],
  ] as const) {
    try {
      fn();
      assert.unreachable(`${side} accepted it`);
    } catch (err) {
      assert.ok(isIcosflError(err, code), `${side}: expected ${code}, got ${String(err)}`);
      assert.match((err as Error).message, message, side);
    }
  }
}

test('truncated, oversized and garbage buffers', () => {
  expectBoth(new Uint8Array(0), 'CRYPTO_MALFORMED_UPDATE', /shorter than the 40-byte header/);
  expectBoth(update.subarray(0, 39), 'CRYPTO_MALFORMED_UPDATE', /truncated/);
  expectBoth(update.subarray(0, update.length - 1), 'CRYPTO_MALFORMED_UPDATE', /truncated: .* announces/);
  const longer = new Uint8Array(update.length + 1);
  longer.set(update);
  expectBoth(longer, 'CRYPTO_MALFORMED_UPDATE', /oversized/);
  expectBoth(new Uint8Array(update.length).fill(0x41), 'CRYPTO_MALFORMED_UPDATE', /bad magic/);
});

test('header fields', () => {
  expectBoth(mutate((b) => (b[4] = 2)), 'CRYPTO_MALFORMED_UPDATE', /unsupported wire version 2/);
  expectBoth(mutate((b) => (b[5] = 9)), 'CRYPTO_MALFORMED_UPDATE', /unknown frame kind 9/);
  expectBoth(mutate((b) => (b[7] = 1)), 'CRYPTO_MALFORMED_UPDATE', /reserved/);
  expectBoth(mutate((_, v) => v.setUint32(24, 0, true)), 'CRYPTO_MALFORMED_UPDATE', /paramCount 0/);
  expectBoth(mutate((_, v) => v.setUint32(24, 9000, true)), 'CRYPTO_MALFORMED_UPDATE', /ciphertextCount 2 does not fit paramCount 9000/);
  expectBoth(mutate((_, v) => v.setUint32(28, 3, true)), 'CRYPTO_MALFORMED_UPDATE', /ciphertextCount 3/);
  expectBoth(mutate((_, v) => v.setUint32(32, 2, true)), 'CRYPTO_MALFORMED_UPDATE', /client count 2 is invalid for a single update/);
  expectBoth(mutate((_, v) => v.setUint32(36, 0, true)), 'CRYPTO_VALUE_OUT_OF_RANGE', /sample count 0/);
  expectBoth(mutate((_, v) => v.setUint32(36, 2 ** 20 + 1, true)), 'CRYPTO_VALUE_OUT_OF_RANGE', /maxRoundSamples/);
});

test('the agent bounds the work an aggregate can ask for with maxClients', () => {
  const agg = aggregate(coordinator, [update, cipher.encryptUpdate(new Float32Array(5000), 2), cipher.encryptUpdate(new Float32Array(5000), 2)]);
  assert.throws(() => cipher.decryptAggregate(agg, { maxClients: 2 }), (e: unknown) => isIcosflError(e, 'CRYPTO_VALUE_OUT_OF_RANGE') && /3 clients/.test((e as Error).message));
  assert.is(cipher.decryptAggregate(agg, { maxClients: 3 }).clients, 3);
});

test('foreign parameters and layout mismatch', () => {
  expectBoth(mutate((b) => (b[8] ^= 1)), 'CRYPTO_PARAMS_MISMATCH', /another federation/);
  assert.throws(() => new UpdateAccumulator(other).add(update), (e: unknown) => isIcosflError(e, 'CRYPTO_PARAMS_MISMATCH'));
  expectBoth(update, 'CRYPTO_LAYOUT_MISMATCH', /5000 parameters, the model layout has 4999/, 4999);
  const acc = new UpdateAccumulator(coordinator);
  acc.add(update);
  const shorter = cipher.encryptUpdate(new Float32Array(4999), 1);
  assert.throws(() => acc.add(shorter), (e: unknown) => isIcosflError(e, 'CRYPTO_LAYOUT_MISMATCH'));
});

test('a residue ≥ q in the second ciphertext is refused and the sum is left as it was', () => {
  const bad = mutate((b) => {
    // Set ciphertext 1's residue 0 to all ones (2^47 - 1 ≥ q): low word, then the first 15 high bits.
    const c1 = 40 + (4096 * 47) / 8;
    b.fill(0xff, c1, c1 + 4);
    b[c1 + 4096 * 4] = 0xff;
    b[c1 + 4096 * 4 + 1]! |= 0x7f;
  });
  expectBoth(bad, 'CRYPTO_MALFORMED_UPDATE', /residue 4096 is not below/);
  const acc = new UpdateAccumulator(coordinator);
  const good = cipher.encryptUpdate(new Float32Array(5000).fill(-2), 3);
  acc.add(good);
  assert.throws(() => acc.add(bad), (e: unknown) => isIcosflError(e, 'CRYPTO_MALFORMED_UPDATE'));
  assert.equal(acc.finish(), aggregate(coordinator, [good]));
  assert.is(acc.clients, 1);
  // A refused FIRST frame fixes nothing: a frame of another size may still start the sum.
  const fresh = new UpdateAccumulator(coordinator);
  assert.throws(() => fresh.add(bad), (e: unknown) => isIcosflError(e, 'CRYPTO_MALFORMED_UPDATE'));
  const bigger = cipher.encryptUpdate(new Float32Array(9000).fill(1.5), 4);
  fresh.add(bigger);
  assert.equal(fresh.finish(), aggregate(coordinator, [bigger]));
});

test('boundary misuse is a TypeError or RangeError naming the argument', () => {
  expectTypeError(() => new UpdateAccumulator(coordinator).add('abc' as unknown as Uint8Array), /expected a Uint8Array, got string/);
  assert.throws(() => aggregate(coordinator, []), (e: unknown) => e instanceof RangeError && /non-empty/.test((e as Error).message));
  assert.throws(() => new UpdateAccumulator(coordinator).finish(), (e: unknown) => e instanceof RangeError);
  assert.throws(() => cipher.encryptUpdate(new Float32Array(0), 1), (e: unknown) => e instanceof RangeError && /weights.length/.test((e as Error).message));
});

function expectTypeError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof TypeError && message.test((e as Error).message));
}

test.run();
