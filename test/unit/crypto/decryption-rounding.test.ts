import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ckksCodec } from '../../../agent/federation/codec.js';
import { AgentCipher, aggregate, deriveParams, generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/index.js';
import { unpackToUint64 } from '../../../common/crypto/packing.js';
import { decryptionStep } from '../../../common/crypto/params.js';
import { createSession } from '../../../common/crypto/seal-session.js';
import { REPO_ROOT } from '../../helpers/paths.js';

/**
 * Decryption hygiene (common/crypto/params.ts): a raw CKKS decryption carries the encryption noise,
 * from which a holder of the ciphertext can solve for the key, so every decrypted Σ n_k·w_k is
 * rounded to decryptionStep before anything sees it. These tests fail if a path skips the rounding.
 */
const PARAMS = 4096;
let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let cipher: AgentCipher;

test.before(async () => {
  const fed = await generateFederation({ federationId: 'hygiene' });
  agent = fed.agent;
  coordinator = fed.coordinator;
  cipher = await AgentCipher.create(agent);
});
test.after(() => cipher.dispose());

const weightsOf = (seed: number) => Float32Array.from({ length: PARAMS }, (_, i) => Math.sin(i * 0.37 + seed) * 3);

/** How many outputs are not k·step/Σn for an integer k (as float32). */
function offGrid(out: Float32Array, step: number, totalSamples: number): number {
  let off = 0;
  for (const w of out) {
    const k = Math.round((w * totalSamples) / step);
    if (Math.fround((k * step) / totalSamples) !== w) off++;
  }
  return off;
}

for (const clients of [1, 3, 40]) {
  test(`every value decrypted from an aggregate of ${clients} lies on the rounding grid`, () => {
    const samples = Array.from({ length: clients }, (_, k) => 50 + 17 * k);
    const updates = samples.map((_, k) => weightsOf(k));
    const bytes = aggregate(coordinator, samples.map((n, k) => cipher.encryptUpdate(updates[k]!, n)));
    const out = cipher.decryptAggregate(bytes, { paramCount: PARAMS });
    const total = samples.reduce((a, b) => a + b, 0);
    assert.is(out.totalSamples, total);
    assert.is(offGrid(out.weights, decryptionStep(deriveParams(agent.params), clients), total), 0);
    // …and rounding costs no accuracy the model needs.
    let worst = 0;
    for (let i = 0; i < PARAMS; i++) {
      const exact = samples.reduce((acc, n, k) => acc + n * updates[k]![i]!, 0) / total;
      worst = Math.max(worst, Math.abs(out.weights[i]! - exact));
    }
    assert.ok(worst < 1e-4, `max |error| ${worst}`);
  });
}

test('two encryptions of one update (different noise) decrypt to the same values; the raw decryptions differ', async () => {
  const w = weightsOf(7);
  const a = cipher.encryptUpdate(w, 500);
  const b = cipher.encryptUpdate(w, 500);
  const outA = cipher.decryptAggregate(a, { paramCount: PARAMS }).weights;
  const outB = cipher.decryptAggregate(b, { paramCount: PARAMS }).weights;
  let rounded = 0;
  for (let i = 0; i < PARAMS; i++) if (outA[i] !== outB[i]) rounded++;
  // The same comparison on raw decryptions, through SEAL directly (what the codec must never return).
  const d = deriveParams(agent.params);
  const session = await createSession(d, agent.secretKey);
  let raw = 0;
  try {
    const rawOf = (bytes: Uint8Array) => session.decryptSum((t, at) => unpackToUint64(bytes, 40, d.n, d.qBits - 32, d.q, t, at), [bytes.subarray(40 + d.packedPolyBytes, 40 + d.packedPolyBytes + 64)]);
    const ra = rawOf(a);
    const rb = rawOf(b);
    for (let i = 0; i < PARAMS; i++) if (ra[i] !== rb[i]) raw++;
  } finally {
    session.dispose();
  }
  assert.ok(raw > PARAMS * 0.9, `raw decryptions differ at only ${raw} of ${PARAMS} values`);
  // Values whose noise straddles a grid boundary may differ by one step; most cannot.
  assert.ok(rounded < PARAMS * 0.2, `rounded decryptions differ at ${rounded} of ${PARAMS} values`);
});

test("the agent's federation codec (globals, ridge statistics, model selection) returns rounded values", () => {
  const codec = ckksCodec(cipher);
  const body = aggregate(coordinator, [codec.encode(weightsOf(1), 300), codec.encode(weightsOf(2), 200)]);
  const out = codec.decode(body, PARAMS, { clients: 2, totalSamples: 500 });
  assert.is(offGrid(out, decryptionStep(deriveParams(agent.params), 2), 500), 0);
});

test('nothing outside common/crypto/agent-cipher.ts decrypts', () => {
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) {
        const rel = relative(REPO_ROOT, path);
        if (rel === 'common/crypto/agent-cipher.ts' || rel === 'common/crypto/seal-session.ts') continue;
        if (/decryptSum\(|\.decrypt\(|Decryptor\(/.test(readFileSync(path, 'utf8'))) offenders.push(rel);
      }
    }
  };
  for (const top of ['agent', 'common', 'coordinator', 'simulate', 'native']) walk(join(REPO_ROOT, top));
  assert.equal(offenders, []);
});

test.run();
