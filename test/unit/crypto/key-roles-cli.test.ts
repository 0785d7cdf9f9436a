import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, tempDir } from '../../helpers/paths.js';

/**
 * Key bundles through the real CLIs: each role refuses the other's bundle saying it is the wrong
 * role (exit NO_PERMISSION), unreadable or foreign files say why, and `keys init` refuses an
 * --out it cannot write (exit CANT_CREATE) before it makes any key.
 */
const tmp = tempDir('icosfl-key-roles-cli-');
test.after(() => tmp.cleanup());
const fed = join(tmp.dir, 'fed');

function cli(side: 'agent' | 'coordinator', ...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
  const r = spawnSync(process.execPath, [join(DIST, side, 'cli.js'), ...args], { encoding: 'utf8', env: { ...env, LOG_LEVEL: 'warn' }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test.before(() => {
  const r = cli('coordinator', 'keys', 'init', '--out', fed, '--federation-id', 'roles-cli');
  assert.is(r.status, 0, r.stderr);
});

test('keys check: each role refuses the other role’s bundle, naming the wrong role', () => {
  const asAgent = cli('coordinator', 'keys', 'check', '--role', 'agent', join(fed, 'coordinator.json'));
  assert.is(asAgent.status, exitCode('NO_PERMISSION'));
  assertCleanStderr(asAgent.stderr);
  assert.match(asAgent.stderr, /\[CRYPTO_KEY_INVALID\] .*coordinator\.json: this is a coordinator bundle \(coordinator\.json, parameters only\), the wrong role for an agent; give the agent agent\.json/);
  assert.not.match(asAgent.stderr, /chmod/, 'not mistaken for a loose secret key');
  const asCoordinator = cli('coordinator', 'keys', 'check', '--role', 'coordinator', join(fed, 'agent.json'));
  assert.is(asCoordinator.status, exitCode('NO_PERMISSION'));
  assert.match(asCoordinator.stderr, /\[CRYPTO_SECRET_KEY_FORBIDDEN\] .*the coordinator must be given coordinator\.json, not agent\.json/);
});

test('keys check: a directory, a missing file and a file that is no bundle each say so', () => {
  const dir = cli('coordinator', 'keys', 'check', '--role', 'agent', fed);
  assert.is(dir.status, exitCode('NO_PERMISSION'));
  assertCleanStderr(dir.stderr);
  assert.match(dir.stderr, `key bundle: cannot read ${fed}: it is a directory (EISDIR)`);
  const missing = cli('coordinator', 'keys', 'check', '--role', 'coordinator', join(fed, 'nope.json'));
  assert.is(missing.status, exitCode('NO_PERMISSION'));
  assertCleanStderr(missing.stderr);
  assert.match(missing.stderr, `cannot read ${join(fed, 'nope.json')}: no such file or directory (ENOENT)`);
  const text = join(tmp.dir, 'notes.txt');
  writeFileSync(text, '{"kind": "icosfl-coordinator-bundle", "par', { mode: 0o600 });
  const truncated = cli('coordinator', 'keys', 'check', '--role', 'coordinator', text);
  assert.is(truncated.status, exitCode('NO_PERMISSION'));
  assertCleanStderr(truncated.stderr);
  assert.match(truncated.stderr, 'not a key bundle (not JSON: truncated or another file)');
});

test('keys init: an --out it cannot create or that holds keys fails before any key is made', () => {
  const file = join(tmp.dir, 'a-file');
  writeFileSync(file, 'x');
  const under = cli('coordinator', 'keys', 'init', '--out', join(file, 'keys'));
  assert.is(under.status, exitCode('CANT_CREATE'));
  assertCleanStderr(under.stderr);
  assert.match(under.stderr, `[OUTPUT_UNWRITABLE] --out: cannot create ${join(file, 'keys')}: a component of the path is not a directory (ENOTDIR)`);
  const again = cli('coordinator', 'keys', 'init', '--out', fed);
  assert.is(again.status, exitCode('CANT_CREATE'));
  assert.match(again.stderr, "already exists; keys init never overwrites a federation's keys");
});

test("agent check-config checks federation.keys as the daemon loads it: the wrong role, a loose mode, the right one", () => {
  const sets = (keys: string) => ['check-config', '--quiet', '--state-dir', join(tmp.dir, 'state'), '--set', 'federation.enabled=true', '--set', `federation.keys=${keys}`];
  const wrong = cli('agent', ...sets(join(fed, 'coordinator.json')));
  assert.is(wrong.status, exitCode('NO_PERMISSION'));
  assertCleanStderr(wrong.stderr);
  assert.match(wrong.stderr, /\[CRYPTO_KEY_INVALID\] federation\.keys: .*this is a coordinator bundle .*the wrong role for an agent/);
  const loose = join(tmp.dir, 'loose', 'agent.json');
  mkdirSync(join(tmp.dir, 'loose'));
  copyFileSync(join(fed, 'agent.json'), loose);
  chmodSync(loose, 0o644);
  const looseRun = cli('agent', ...sets(loose));
  assert.is(looseRun.status, exitCode('NO_PERMISSION'));
  assert.match(looseRun.stderr, 'readable by group or others (mode 644); chmod 600 it');
  const ok = cli('agent', ...sets(join(fed, 'agent.json')));
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /federation roles-cli, key [0-9a-f]{32}/);
});

test.run();
