import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, tempDir } from '../../helpers/paths.js';

/**
 * `icosfl-coordinator serve` with directories it cannot create: a path problem (CANT_CREATE)
 * naming the key, not corrupt state; and the status commands with nothing running or a bad flag.
 */
const tmp = tempDir('icosfl-serve-errors-');
test.after(() => tmp.cleanup());
const file = join(tmp.dir, 'plain');
writeFileSync(file, 'x');

function coordinator(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
  const r = spawnSync(process.execPath, [join(DIST, 'coordinator', 'cli.js'), ...args], { encoding: 'utf8', env: { ...env, LOG_LEVEL: 'silent' }, timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

const PLAIN = ['--set', 'coordinator.codec=plaintext', '--set', 'federation.id=serve-errors'];

test('serve: state_dir and runtime_dir under a file are CANT_CREATE naming the key', () => {
  const state = coordinator('serve', ...PLAIN, '--set', `coordinator.state_dir=${join(file, 'state')}`);
  assert.is(state.status, exitCode('CANT_CREATE'));
  assertCleanStderr(state.stderr);
  assert.match(state.stderr, /\[OUTPUT_UNWRITABLE\] coordinator\.state_dir: cannot create .*plain\/state.*: a component of the path is not a directory \(ENOTDIR\)/);
  const run = coordinator('serve', ...PLAIN, '--set', `coordinator.state_dir=${join(tmp.dir, 'state')}`, '--set', `coordinator.runtime_dir=${join(file, 'run')}`);
  assert.is(run.status, exitCode('CANT_CREATE'));
  assertCleanStderr(run.stderr);
  assert.match(run.stderr, `[OUTPUT_UNWRITABLE] coordinator.runtime_dir: cannot create ${join(file, 'run')}: a component of the path is not a directory (ENOTDIR)`);
});

test('status, agents, rounds: nothing running is UNAVAILABLE; a bad flag is USAGE naming it', () => {
  for (const cmd of ['status', 'agents', 'rounds']) {
    const r = coordinator(cmd, '--socket', join(tmp.dir, 'none.sock'));
    assert.is(r.status, exitCode('UNAVAILABLE'), cmd);
    assertCleanStderr(r.stderr);
    assert.match(r.stderr, `[DAEMON_NOT_RUNNING] icosfl-coordinator is not running: there is no socket (ENOENT) at ${join(tmp.dir, 'none.sock')}`);
  }
  const flag = coordinator('rounds', '--limt', '3');
  assert.is(flag.status, exitCode('USAGE'));
  assertCleanStderr(flag.stderr);
  assert.match(flag.stderr, "unknown option '--limt' for 'icosfl-coordinator rounds'; 'icosfl-coordinator rounds --help' lists its options");
});

test.run();
