import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, UpdateAccumulator, aggregate, deriveParams, generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/index.js';
import { IcosflError } from '../../../common/errors.js';
import { seededRandom } from '../../../common/seeded-random.js';

// 10,000 generated malformed buffers into each loader (the coordinator's adder and the agent's
// decryptor): bit flips, truncations, extensions, header field mutations, random bytes. Each must
// either be refused with a CRYPTO_* code or, when only ciphertext bits changed (indistinguishable
// from a valid ciphertext by design; the transport's signature covers integrity), decode cleanly.
const CASES = 10_000;
const ALLOWED = new Set(['CRYPTO_MALFORMED_UPDATE', 'CRYPTO_PARAMS_MISMATCH', 'CRYPTO_LAYOUT_MISMATCH', 'CRYPTO_VALUE_OUT_OF_RANGE']);

let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let foreign: CoordinatorBundle;
let cipher: AgentCipher;
let bases: Uint8Array[];

const prng = seededRandom; // mulberry32 (common/seeded-random.ts): a failure replays from its seed

test.before(async () => {
  ({ agent, coordinator } = await generateFederation({ federationId: 'hostile' }));
  ({ coordinator: foreign } = await generateFederation({ federationId: 'elsewhere' }));
  cipher = await AgentCipher.create(agent);
  const w = new Float32Array(2000).map((_, i) => Math.cos(i));
  const update = cipher.encryptUpdate(w, 5);
  bases = [update, aggregate(coordinator, [update, cipher.encryptUpdate(w, 7), cipher.encryptUpdate(w, 9)])];
});
test.after(() => cipher.dispose());

function generate(rand: () => number): { kind: string; bytes: Uint8Array } {
  const base = bases[rand() < 0.5 ? 0 : 1]!;
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = int(7);
  if (pick === 0) {
    const b = base.slice();
    const flips = 1 + int(8);
    // Half the flips land in the 40-byte header, where they must be caught.
    for (let f = 0; f < flips; f++) {
      const pos = rand() < 0.5 ? int(40) : int(b.length);
      b[pos]! ^= 1 << int(8);
    }
    return { kind: 'bit flips', bytes: b };
  }
  if (pick === 1) return { kind: 'truncation', bytes: base.slice(0, int(base.length)) };
  if (pick === 2) {
    const extra = new Uint8Array(1 + int(rand() < 0.5 ? 16 : 100_000)).map(() => int(256));
    const b = new Uint8Array(base.length + extra.length);
    b.set(base);
    b.set(extra, base.length);
    return { kind: 'extension', bytes: b };
  }
  if (pick === 3) {
    const b = base.slice();
    const v = new DataView(b.buffer);
    const field = [4, 5, 6, 24, 28, 32, 36][int(7)]!;
    const edge = [0, 1, 2, 0xff, 0xffff, 0x7fffffff, 0xffffffff, int(2 ** 32), 2000, 4096, 4097, 8192][int(12)]!;
    if (field < 6) v.setUint8(field, edge & 0xff);
    else if (field === 6) v.setUint16(field, edge & 0xffff, true);
    else v.setUint32(field, edge >>> 0, true);
    return { kind: 'header field', bytes: b };
  }
  if (pick === 4) return { kind: 'random bytes', bytes: new Uint8Array(int(rand() < 0.5 ? 64 : 2 * base.length)).map(() => int(256)) };
  if (pick === 5) {
    // Random body behind a valid header prefix: exercises the deep paths.
    const b = new Uint8Array(base.length).map(() => int(256));
    b.set(base.subarray(0, 40));
    return { kind: 'valid header, random body', bytes: b };
  }
  const b = base.slice();
  b.set(deriveParams(foreign.params).paramsHash, 8);
  return { kind: 'foreign parameter hash', bytes: b };
}

function classify(fn: () => void): string {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    if (err instanceof IcosflError && ALLOWED.has(err.code)) return err.code;
    return `CRASH ${String(err)}`;
  }
}

for (const side of ['coordinator', 'agent'] as const) {
  test(`${CASES} malformed inputs to the ${side}'s loader: 0 crashes`, () => {
    const seed = Date.now() >>> 0;
    const rand = prng(seed);
    const tally = new Map<string, number>();
    const crashes: string[] = [];
    for (let i = 0; i < CASES; i++) {
      const { kind, bytes } = generate(rand);
      const outcome = classify(() => {
        if (side === 'coordinator') {
          new UpdateAccumulator(coordinator).add(bytes);
        } else {
          // The agent knows its model's layout, as the trainer does.
          const r = cipher.decryptAggregate(bytes, { paramCount: 2000 });
          if (!(r.weights.length === 2000 && r.clients >= 1)) throw new Error('accepted but malformed result');
        }
      });
      const key = outcome.startsWith('CRASH') ? 'CRASH' : outcome;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      if (outcome.startsWith('CRASH')) crashes.push(`case ${i} (${kind}): ${outcome}`);
    }
    console.log(`  ${side}, seed ${seed}:`, Object.fromEntries(tally));
    assert.equal(crashes.slice(0, 5), [], `seed ${seed}`);
    assert.ok((tally.get('CRYPTO_MALFORMED_UPDATE') ?? 0) > CASES / 4);
  });
}

test('after the barrage both sides still work', () => {
  const w = new Float32Array(2000).fill(0.25);
  // A round-sized sample count: the decrypted average's error is about 5.5e-3 / Σn
  // (common/crypto/params.ts), so with n = 3 it could exceed 1e-4 by chance (it did in CI once);
  // with n = 1000 it is ~5e-6, and a broken side is off by far more.
  const out = cipher.decryptAggregate(aggregate(coordinator, [cipher.encryptUpdate(w, 1000)]));
  const worst = out.weights.reduce((m, v) => Math.max(m, Math.abs(v - 0.25)), 0);
  assert.ok(worst < 1e-4, `max |error| ${worst}`);
  assert.is(out.clients, 1);
});

test.run();
