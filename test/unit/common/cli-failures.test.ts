import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import { asNobody } from '../../helpers/as-nobody.js';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import { DIST, tempDir } from '../../helpers/paths.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';

/**
 * The last-resort handler of common/cli.ts, met as a user meets it: a child process on the real
 * runCli whose commands fail with real zod, JSON, fs and engine errors (test/helpers/failing-cli.ts).
 * Each leaves with a documented exit status and one line: no stack, no ZodError JSON, no raw errno.
 */
const CLI = join(DIST, 'test', 'helpers', 'failing-cli.js');
const tmp = tempDir('icosfl-cli-failures-');
test.after(() => tmp.cleanup());

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'info', ...env }, timeout: 30_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

test('an unmapped zod error is one line naming each key and what was allowed, exit FAILURE', () => {
  const r = run(['zod']);
  assert.is(r.status, exitCode('FAILURE'));
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, /^failing-cli: invalid input: port: expected number, got string; mode: must be one of 'a', 'b', got 'c'; run with LOG_LEVEL=debug for the stack\n$/);
});

test('JSON.parse on a broken file, a bug and a thrown object: one line each, never [object Object]', () => {
  const broken = join(tmp.dir, 'broken.json');
  writeFileSync(broken, '{"a": 1,');
  const json = run(['json', broken]);
  assert.is(json.status, exitCode('FAILURE'));
  assertCleanStderr(json.stderr);
  assert.match(json.stderr, /malformed JSON/);
  const bug = run(['bug']);
  assert.is(bug.status, exitCode('SOFTWARE'), 'an engine TypeError is a bug, not a bad flag');
  assertCleanStderr(bug.stderr);
  assert.match(bug.stderr, /^failing-cli: internal error: Cannot read properties of undefined \(reading 'x'\); this is a bug in icosfl, run with LOG_LEVEL=debug for the stack\n$/);
  const object = run(['object']);
  assert.is(object.status, exitCode('SOFTWARE'));
  assertCleanStderr(object.stderr);
  assert.match(object.stderr, /plain object/);
});

test('with LOG_LEVEL=debug the stack follows the line, for a bug report', () => {
  const r = run(['bug'], { LOG_LEVEL: 'debug' });
  assert.is(r.status, exitCode('SOFTWARE'));
  assert.match(r.stderr, /internal error: .*\nTypeError: Cannot read properties of undefined/);
  assert.match(r.stderr, /\n\s+at /);
});

test('system errors nobody mapped: the path, the errno in words and what to do', () => {
  const missing = run(['read', join(tmp.dir, 'nope.csv')]);
  assert.is(missing.status, exitCode('DATA'));
  assertCleanStderr(missing.stderr);
  assert.match(missing.stderr, `[DATA_INVALID] cannot read ${join(tmp.dir, 'nope.csv')}: no such file or directory (ENOENT); check the path`);
  const dir = join(tmp.dir, 'a-dir');
  mkdirSync(dir);
  const isDir = run(['read', dir]);
  assert.is(isDir.status, exitCode('DATA'));
  // Node's EISDIR on read() carries no path; the call sites that know it say it (keys, --data).
  assert.match(isDir.stderr, 'it is a directory (EISDIR); name a file, not a directory');
  const exists = run(['mkdir', dir]);
  assert.is(exists.status, exitCode('CANT_CREATE'));
  assertCleanStderr(exists.stderr);
  assert.match(exists.stderr, `[OUTPUT_UNWRITABLE] cannot create ${dir}: it already exists (EEXIST); remove it first or choose another path`);
  const file = join(tmp.dir, 'file');
  writeFileSync(file, 'x');
  const notDir = run(['mkdir', join(file, 'sub')]);
  assert.is(notDir.status, exitCode('CANT_CREATE'));
  assert.match(notDir.stderr, '(ENOTDIR); check that every parent of the path is a directory');
});

test('ENOSPC while writing (/dev/full) is an output problem: free space or choose another device', () => {
  const r = run(['write', '/dev/full']);
  assert.is(r.status, exitCode('CANT_CREATE'));
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, '[OUTPUT_UNWRITABLE] cannot write a file: no space left on the device (ENOSPC); free some space or choose another device');
});

test('EACCES on an output directory is a permission problem with a writable-path hint', () => {
  const locked = join(tmp.dir, 'locked');
  mkdirSync(locked);
  chmodSync(locked, 0o500);
  // root ignores directory modes: the child runs as nobody then, as a user without rights would.
  const nobody = asNobody();
  chmodSync(tmp.dir, 0o755);
  let r: SpawnSyncReturns<string>;
  try {
    r = spawnSync(process.execPath, [CLI, 'mkdir', join(locked, 'out')], { encoding: 'utf8', cwd: '/', ...nobody.spawn, env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 });
  } finally {
    nobody.restore();
  }
  assert.is(r.status, exitCode('CANT_CREATE'), r.stderr);
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, `cannot create ${join(locked, 'out')}: permission denied (EACCES); choose a writable path or fix its permissions`);
});

test('unknown flags, missing values and stray arguments name the flag and where help is (USAGE)', () => {
  const unknown = run(['flags', '--outt', 'x']);
  assert.is(unknown.status, exitCode('USAGE'));
  assertCleanStderr(unknown.stderr);
  assert.is(unknown.stderr, "failing-cli: [USAGE_INVALID] unknown option '--outt' for 'failing-cli flags'; 'failing-cli flags --help' lists its options\n");
  const missing = run(['flags', '--out']);
  assert.is(missing.status, exitCode('USAGE'));
  assert.is(missing.stderr, "failing-cli: [USAGE_INVALID] option '--out' needs a value: --out FILE; 'failing-cli flags --help' lists its options\n");
  const valued = run(['flags', '--json=yes']);
  assert.is(valued.status, exitCode('USAGE'));
  assert.is(valued.stderr, "failing-cli: [USAGE_INVALID] option '--json' takes no value; 'failing-cli flags --help' lists its options\n");
  const stray = run(['flags', 'extra']);
  assert.is(stray.status, exitCode('USAGE'));
  assert.match(stray.stderr, "unexpected argument 'extra': 'failing-cli flags' takes no arguments");
  const range = run(['range']);
  assert.is(range.status, exitCode('USAGE'));
  assert.is(range.stderr, "failing-cli: --limit must be a positive integer, got 'x'\n");
  const command = run(['nope']);
  assert.is(command.status, exitCode('USAGE'));
  assert.match(command.stderr, "unknown command 'nope'");
});

test('a failure outside the command (a timer) ends the process with the same one line', () => {
  const r = run(['timer']);
  assert.is(r.status, exitCode('SOFTWARE'));
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, /^failing-cli: internal error: boom in a timer; /);
});

test.run();
