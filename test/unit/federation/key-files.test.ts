import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentKeyFiles } from '../../../agent/federation/key-files.js';
import { generateFederation, loadAgentBundle, rotateFederation, writeFederation } from '../../../common/crypto/index.js';
import { tempDir } from '../../helpers/paths.js';

/**
 * The agent's key files during a rotation: federation.keys and federation.next_keys, re-read
 * when they change; what they hold is what the agent holds (presence `keys`), a bundle of
 * another federation or with a loose mode is refused, and a removed file holds nothing.
 */
const tmp = tempDir('icosfl-key-files-');
test.after(() => tmp.cleanup());
const logger = pino({ level: 'silent' });

test('next_keys: picked up when installed, refused from another federation or when readable by others, forgotten when removed', async () => {
  const e0 = await generateFederation({ federationId: 'kf' });
  const e1 = await rotateFederation(e0.coordinator.params);
  const other = await generateFederation({ federationId: 'elsewhere' });
  writeFederation(join(tmp.dir, 'e0'), e0);
  writeFederation(join(tmp.dir, 'e1'), e1);
  writeFederation(join(tmp.dir, 'other'), other);
  const current = join(tmp.dir, 'e0', 'agent.json');
  const next = join(tmp.dir, 'agent-next.json');
  const ring = await AgentKeyFiles.open({ path: current, bundle: loadAgentBundle(current) }, next, logger);
  try {
    const k0 = e0.agent.params.keyId;
    const k1 = e1.agent.params.keyId;
    assert.equal(ring.keyIds(), [k0]);
    assert.is(await ring.poll(), false, 'no next file yet');

    copyFileSync(join(tmp.dir, 'other', 'agent.json'), next);
    assert.is(await ring.poll(), false, 'another federation is refused');
    assert.is(ring.forKey(other.agent.params.keyId), undefined);

    copyFileSync(join(tmp.dir, 'e1', 'agent.json'), next);
    chmodSync(next, 0o644);
    assert.is(await ring.poll(), false, 'a secret key readable by others is refused');

    chmodSync(next, 0o600); // the fix an operator makes: a mode change is a change too (ctime)
    assert.is(await ring.poll(), true);
    assert.equal(ring.keyIds(), [k0, k1].sort());
    const c1 = ring.forKey(k1)!;
    assert.is(c1.keyId, k1);
    assert.is(ring.forKey(k1), c1, 'one codec per key');
    assert.equal(ring.held().map((h) => h.epoch), [0, 1]);

    rmSync(next);
    assert.is(await ring.poll(), true);
    assert.equal(ring.keyIds(), [k0]);
    assert.is(ring.forKey(k1), undefined, 'a key no file holds is not used');
  } finally {
    ring.dispose();
  }
});

test.run();
