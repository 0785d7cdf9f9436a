import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, loadAgentBundle } from '../../../common/crypto/index.js';
import { fedAvg } from '../../../coordinator/strategy/fedavg.js';
import { DIST, tempDir } from '../../helpers/paths.js';

// The real CLI makes the keys; a separate coordinator process sums updates from files with only
// coordinator.json, and we check that it never even loaded SEAL (so nothing in it can decrypt).
const tmp = tempDir('icosfl-coord-');
const CLI = join(DIST, 'coordinator', 'cli.js');
test.after(() => tmp.cleanup());

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('keys init writes both bundles; the coordinator role refuses the agent bundle (exit 77)', () => {
  const r = cli('keys', 'init', '--out', join(tmp.dir, 'fed'), '--federation-id', 'it-1');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /federation it-1 key epoch 0 \(key [0-9a-f]{32}\): CKKS N=4096, .*256-bit security/);
  assert.is(statSync(join(tmp.dir, 'fed', 'agent.json')).mode & 0o777, 0o600);
  const refused = cli('keys', 'check', '--role', 'coordinator', join(tmp.dir, 'fed', 'agent.json'));
  assert.is(refused.status, 77);
  assert.match(refused.stderr, /CRYPTO_SECRET_KEY_FORBIDDEN/);
  assert.is(cli('keys', 'check', '--role', 'coordinator', join(tmp.dir, 'fed', 'coordinator.json')).status, 0);
  assert.is(cli('keys', 'check', '--role', 'agent', join(tmp.dir, 'fed', 'agent.json')).status, 0);
  const again = cli('keys', 'init', '--out', join(tmp.dir, 'fed'));
  assert.is(again.status, 73);
  assert.match(again.stderr, /\[OUTPUT_UNWRITABLE\] --out: .*never overwrites/);
  assert.is(cli('keys', 'init').status, 64);
  assert.is(cli('keys', 'init', '--out', join(tmp.dir, 'x'), '--max-abs-weight', '-1').status, 64);
});

test('a coordinator process with coordinator.json sums the updates without loading SEAL', async () => {
  const agent = loadAgentBundle(join(tmp.dir, 'fed', 'agent.json'));
  const cipher = await AgentCipher.create(agent);
  try {
    const clients = Array.from({ length: 4 }, (_, k) => ({ weights: new Float32Array(3000).map(() => Math.random() * 4 - 2), samples: 10 * (k + 1) }));
    const files = clients.map((c, k) => {
      const path = join(tmp.dir, `update-${k}.bin`);
      writeFileSync(path, cipher.encryptUpdate(c.weights, c.samples));
      return path;
    });
    const script = join(tmp.dir, 'coordinator.mjs');
    writeFileSync(
      script,
      `import { createRequire } from 'node:module';
       import { readFileSync, writeFileSync } from 'node:fs';
       import { loadCoordinatorBundle } from ${JSON.stringify(join(DIST, 'common', 'crypto', 'bundle.js'))};
       import { ckksFedAvg } from ${JSON.stringify(join(DIST, 'coordinator', 'strategy', 'ckks-fedavg.js'))};
       const [bundlePath, out, ...files] = process.argv.slice(2);
       const bytes = ckksFedAvg(loadCoordinatorBundle(bundlePath), files.map((f) => new Uint8Array(readFileSync(f))), { paramCount: 3000 });
       writeFileSync(out, bytes);
       const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('node-seal'));
       process.stdout.write(JSON.stringify({ sealLoaded: loaded.length > 0, bytes: bytes.length }));`,
    );
    const out = join(tmp.dir, 'aggregate.bin');
    const r = spawnSync(process.execPath, [script, join(tmp.dir, 'fed', 'coordinator.json'), out, ...files], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { sealLoaded: boolean };
    assert.is(report.sealLoaded, false, 'the coordinator process loaded node-seal');
    const result = cipher.decryptAggregate(new Uint8Array(readFileSync(out)), { paramCount: 3000 });
    assert.is(result.clients, 4);
    const expected = fedAvg(clients);
    let err = 0;
    for (let i = 0; i < 3000; i++) err = Math.max(err, Math.abs(result.weights[i]! - expected[i]!));
    assert.ok(err <= 1e-4, `max abs error ${err}`);

    // Handed the agent bundle instead, the same coordinator process refuses to run.
    const refused = spawnSync(process.execPath, [script, join(tmp.dir, 'fed', 'agent.json'), out, ...files], { encoding: 'utf8', timeout: 60_000 });
    assert.is.not(refused.status, 0);
    assert.match(refused.stderr, /CRYPTO_SECRET_KEY_FORBIDDEN/);
  } finally {
    cipher.dispose();
  }
});

test.run();
