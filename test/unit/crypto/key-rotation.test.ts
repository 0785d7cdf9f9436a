import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, aggregate, generateFederation, loadAgentBundle, loadCoordinatorBundle, parseCoordinatorBundle, rotateFederation, writeFederation } from '../../../common/crypto/index.js';
import { exitCode } from '../../../common/exit-codes.js';
import { CoordinatorKeyRing } from '../../../coordinator/key-ring.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, tempDir } from '../../helpers/paths.js';

/**
 * Key epochs: `keys rotate` makes the next epoch of the same federation (new secret key and
 * keyId, same parameters, epoch + 1); a bundle written before epochs existed reads as epoch 0;
 * one epoch's ciphertexts do not add or decrypt under another's; the coordinator's key ring
 * takes only a later epoch of its own federation from coordinator.next_keys.
 */
const tmp = tempDir('icosfl-key-rotation-');
test.after(() => tmp.cleanup());
const logger = pino({ level: 'silent' });

function cli(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
  const r = spawnSync(process.execPath, [join(DIST, 'coordinator', 'cli.js'), ...args], { encoding: 'utf8', env: { ...env, LOG_LEVEL: 'warn' }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('rotateFederation: same federation and parameters, a new key, epoch + 1', async () => {
  const e0 = await generateFederation({ federationId: 'rot', maxAbsWeight: 8 });
  assert.is(e0.agent.params.epoch, 0);
  const e1 = await rotateFederation(e0.coordinator.params);
  const e2 = await rotateFederation(e1.coordinator.params);
  assert.equal([e1.agent.params.epoch, e2.agent.params.epoch], [1, 2]);
  for (const e of [e1, e2]) {
    assert.is(e.agent.params.federationId, 'rot');
    assert.is(e.agent.params.maxAbsWeight, 8);
    assert.is(e.agent.params.coeffModulus, e0.agent.params.coeffModulus);
  }
  assert.is(new Set([e0, e1, e2].map((e) => e.agent.params.keyId)).size, 3);
});

test('a bundle without an epoch (written before rotation) is epoch 0', async () => {
  const e0 = await generateFederation({ federationId: 'old' });
  const { epoch: _e, ...before } = e0.coordinator.params;
  void _e;
  assert.is(parseCoordinatorBundle({ kind: 'icosfl-coordinator-bundle', params: before }, 'old.json').params.epoch, 0);
});

test("one epoch's update does not add into, or decrypt under, another epoch", async () => {
  const e0 = await generateFederation({ federationId: 'mix' });
  const e1 = await rotateFederation(e0.coordinator.params);
  const c0 = await AgentCipher.create(e0.agent);
  const c1 = await AgentCipher.create(e1.agent);
  try {
    const w = Float32Array.from({ length: 10 }, (_, i) => i / 10);
    const u0 = c0.encryptUpdate(w, 3);
    const u1 = c1.encryptUpdate(w, 3);
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return 'no error';
    };
    assert.is(code(() => aggregate(e0.coordinator, [u0, u1])), 'CRYPTO_PARAMS_MISMATCH');
    assert.is(code(() => c0.decryptAggregate(aggregate(e1.coordinator, [u1]))), 'CRYPTO_PARAMS_MISMATCH');
  } finally {
    c0.dispose();
    c1.dispose();
  }
});

test('keys rotate: writes the next epoch beside nothing it would overwrite; --from an agent.json dir works too', () => {
  const fed = join(tmp.dir, 'fed');
  assert.is(cli('keys', 'init', '--out', fed, '--federation-id', 'rot-cli').status, 0);
  const next = join(tmp.dir, 'next');
  const r = cli('keys', 'rotate', '--from', fed, '--out', next);
  assert.is(r.status, 0, r.stderr);
  assertCleanStderr(r.stderr);
  assert.match(r.stdout, /federation rot-cli key epoch 1 \(key [0-9a-f]{32}\)/);
  assert.match(r.stdout, /replaces key epoch 0/);
  const a = loadAgentBundle(join(next, 'agent.json'));
  const c = loadCoordinatorBundle(join(next, 'coordinator.json'));
  assert.equal([a.params.epoch, c.params.keyId, a.params.federationId], [1, a.params.keyId, 'rot-cli']);
  assert.is.not(a.params.keyId, loadCoordinatorBundle(join(fed, 'coordinator.json')).params.keyId);
  const again = cli('keys', 'rotate', '--from', fed, '--out', next);
  assert.is(again.status, exitCode('CANT_CREATE'));
  assert.match(again.stderr, /\[OUTPUT_UNWRITABLE\] --out: .*agent\.json already exists; keys rotate never overwrites/);
  assert.equal(loadAgentBundle(join(next, 'agent.json')).secretKey, a.secretKey, 'untouched');
  const fromFile = cli('keys', 'rotate', '--from', join(next, 'coordinator.json'), '--out', join(tmp.dir, 'next2'));
  assert.is(fromFile.status, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /key epoch 2/);
  const none = cli('keys', 'rotate', '--from', tmp.dir, '--out', join(tmp.dir, 'next3'));
  assert.is(none.status, exitCode('NO_PERMISSION'));
  assert.match(none.stderr, /\[CRYPTO_KEY_INVALID\] --from: .* holds neither coordinator\.json nor agent\.json/);
});

test('coordinator key ring: takes a later epoch of its own federation from next_keys, refuses the rest', async () => {
  const dir = join(tmp.dir, 'ring');
  const e0 = await generateFederation({ federationId: 'ring' });
  const e1 = await rotateFederation(e0.coordinator.params);
  const other = await generateFederation({ federationId: 'other' });
  const nextPath = join(dir, 'coordinator-next.json');
  const ring = new CoordinatorKeyRing(e0.coordinator, nextPath, logger);
  assert.is(ring.poll(), undefined, 'no file: nothing');
  writeFederation(join(dir, 'e1'), e1);
  writeFederation(join(dir, 'other'), other);
  writeFileSync(nextPath, readFileSync(join(dir, 'other', 'coordinator.json')));
  assert.is(ring.poll(), undefined, 'another federation');
  assert.not.ok(ring.has(other.coordinator.params.keyId));
  writeFileSync(nextPath, readFileSync(join(dir, 'other', 'agent.json')));
  assert.is(ring.poll(), undefined, 'a secret key');
  writeFileSync(nextPath, readFileSync(join(dir, 'e1', 'coordinator.json')) + ' ');
  assert.is(ring.poll()?.params.keyId, e1.coordinator.params.keyId);
  assert.ok(ring.strategyFor(e1.coordinator.params.keyId));
  assert.equal(ring.epochs().map((e) => e.epoch), [0, 1]);
  // An older epoch offered as the next one is refused.
  const ring1 = new CoordinatorKeyRing(e1.coordinator, join(dir, 'back.json'), logger);
  writeFederation(join(dir, 'e0'), e0);
  writeFileSync(join(dir, 'back.json'), readFileSync(join(dir, 'e0', 'coordinator.json')));
  assert.is(ring1.poll(), undefined, 'epoch 0 is not after epoch 1');
});

test.run();
