import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AgentCipher,
  UpdateAccumulator,
  aggregate,
  deriveParams,
  generateFederation,
  loadAgentBundle,
  loadCoordinatorBundle,
  writeFederation,
  type AgentBundle,
  type CoordinatorBundle,
} from '../../../common/crypto/index.js';
import { createSession } from '../../../common/crypto/seal-session.js';
import { isIcosflError, type ErrorCode } from '../../../common/errors.js';
import { tempDir } from '../../helpers/paths.js';

const tmp = tempDir('icosfl-keys-');
let paths: { agentPath: string; coordinatorPath: string };
let agent: AgentBundle;
let coordinator: CoordinatorBundle;

test.before(async () => {
  const fed = await generateFederation({ federationId: 'roles', maxAbsWeight: 8, maxRoundSamples: 5000 });
  paths = writeFederation(tmp.dir, fed);
  agent = loadAgentBundle(paths.agentPath);
  coordinator = loadCoordinatorBundle(paths.coordinatorPath);
});
test.after(() => tmp.cleanup());

function expectCode(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  try {
    fn();
    assert.unreachable(`expected ${code}`);
  } catch (err) {
    assert.ok(isIcosflError(err, code), `expected ${code}, got ${String(err)}`);
    if (message) assert.match((err as Error).message, message);
  }
}

test('keys are written with the right modes and load back with the options chosen', () => {
  assert.is(statSync(paths.agentPath).mode & 0o777, 0o600);
  assert.is(statSync(tmp.dir).mode & 0o077, 0);
  assert.is(agent.params.maxAbsWeight, 8);
  assert.is(coordinator.params.maxRoundSamples, 5000);
  assert.equal(agent.params, coordinator.params);
  assert.throws(() => writeFederation(tmp.dir, { agent, coordinator }), /EEXIST/);
});

test("the coordinator's files hold no secret key and its loader refuses one", () => {
  const text = readFileSync(paths.coordinatorPath, 'utf8');
  assert.not.match(text, /secretKey/);
  assert.ok(!text.includes(Buffer.from(agent.secretKey.subarray(100, 148)).toString('base64')));
  expectCode(() => loadCoordinatorBundle(paths.agentPath), 'CRYPTO_SECRET_KEY_FORBIDDEN', /agent\.json/);
  expectCode(() => new UpdateAccumulator(agent as unknown as CoordinatorBundle), 'CRYPTO_SECRET_KEY_FORBIDDEN');
  const sneaky = join(tmp.dir, 'sneaky.json');
  writeFileSync(sneaky, JSON.stringify({ kind: 'icosfl-coordinator-bundle', params: coordinator.params, secretKey: 'AAAA' }));
  expectCode(() => loadCoordinatorBundle(sneaky), 'CRYPTO_SECRET_KEY_FORBIDDEN');
});

test('agent bundles: group-readable, tampered or foreign keys fail cleanly', async () => {
  const loose = join(tmp.dir, 'loose.json');
  writeFileSync(loose, readFileSync(paths.agentPath), { mode: 0o644 });
  chmodSync(loose, 0o644);
  expectCode(() => loadAgentBundle(loose), 'CRYPTO_KEY_INVALID', /chmod 600/);
  const tampered = join(tmp.dir, 'tampered.json');
  const json = JSON.parse(readFileSync(paths.agentPath, 'utf8'));
  const key = Buffer.from(json.secretKey, 'base64');
  key[200] ^= 1;
  writeFileSync(tampered, JSON.stringify({ ...json, secretKey: key.toString('base64') }), { mode: 0o600 });
  expectCode(() => loadAgentBundle(tampered), 'CRYPTO_KEY_INVALID', /keyId/);
  writeFileSync(tampered, JSON.stringify({ ...json, params: { ...json.params, maxAbsWeight: 'big' } }), { mode: 0o600 });
  expectCode(() => loadAgentBundle(tampered), 'CRYPTO_KEY_INVALID', /maxAbsWeight/);
  expectCode(() => loadAgentBundle(paths.coordinatorPath), 'CRYPTO_KEY_INVALID');
  expectCode(() => loadAgentBundle(join(tmp.dir, 'missing.json')), 'CRYPTO_KEY_INVALID', /cannot read/);

  // Another federation's key: its ciphertexts are refused by header, not misdecrypted.
  const foreign = await generateFederation({ federationId: 'roles', maxAbsWeight: 8, maxRoundSamples: 5000 });
  const ours = await AgentCipher.create(agent);
  const theirs = await AgentCipher.create(foreign.agent);
  try {
    const u = ours.encryptUpdate(new Float32Array(100).fill(1), 3);
    expectCode(() => theirs.decryptAggregate(aggregate(coordinator, [u])), 'CRYPTO_PARAMS_MISMATCH');
    expectCode(() => aggregate(foreign.coordinator, [u]), 'CRYPTO_PARAMS_MISMATCH');
    await AgentCipher.create({ params: agent.params, secretKey: foreign.agent.secretKey }).then(
      () => assert.unreachable('a key for other params was accepted'),
      (err) => assert.ok(isIcosflError(err, 'CRYPTO_KEY_INVALID'), String(err)),
    );
  } finally {
    ours.dispose();
    theirs.dispose();
  }
});

test('without the secret key the aggregate is noise: a key made from the public parameters decrypts garbage', async () => {
  const ours = await AgentCipher.create(agent);
  // What a curious coordinator could do: make its own key for the same parameters and decrypt.
  const attacker = await generateFederation({ federationId: 'roles', maxAbsWeight: 8, maxRoundSamples: 5000 });
  const session = await createSession(deriveParams(coordinator.params), attacker.agent.secretKey);
  try {
    const weights = new Float32Array(4096).map((_, i) => Math.sin(i));
    // n = 1000: the decrypted average's error (~5.5e-3 / Σn) stays far below the 1e-4 check.
    const bytes = aggregate(coordinator, [ours.encryptUpdate(weights, 1000)]);
    assert.ok(Math.abs(ours.decryptAggregate(bytes).weights[5]! - Math.sin(5)) < 1e-4);
    const d = deriveParams(coordinator.params);
    const { unpackToUint64 } = await import('../../../common/crypto/packing.js');
    const seed = bytes.subarray(40 + d.packedPolyBytes, 40 + d.packedPolyBytes + 64);
    const values = session.decryptSum((t, at) => unpackToUint64(bytes, 40, d.n, 15, d.q, t, at), [seed]);
    let close = 0;
    for (let i = 0; i < 4096; i++) if (Math.abs(values[i]! / 1000 - weights[i]!) < 0.01) close++;
    assert.ok(close < 40, `${close} of 4096 values decrypted close to the truth with the wrong key`);
  } finally {
    session.dispose();
    ours.dispose();
  }
});

test.run();
