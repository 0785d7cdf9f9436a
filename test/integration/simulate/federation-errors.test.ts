import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, tempDir } from '../../helpers/paths.js';

/**
 * `icosfl-simulate federation` when one of its real processes fails (here the coordinator, whose
 * runtime directory is a file): SIMULATION_FAILED naming the process and its log, not a stack.
 */
const tmp = tempDir('icosfl-federation-errors-');
test.after(() => tmp.cleanup());

function simulate(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
  const r = spawnSync(process.execPath, [join(DIST, 'simulate', 'cli.js'), ...args], { encoding: 'utf8', env: { ...env, LOG_LEVEL: 'warn' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a process of the federation that exits: SIMULATION_FAILED with its exit code and log', () => {
  const keep = join(tmp.dir, 'keep');
  mkdirSync(join(keep, 'coordinator'), { recursive: true });
  writeFileSync(join(keep, 'coordinator', 'run'), 'not a directory');
  const r = simulate('federation', '--plaintext', '--agents', '2', '--keep', keep, '--timeout-s', '60');
  assert.is(r.status, exitCode('FAILURE'), r.stderr);
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, `[SIMULATION_FAILED] coordinator exited with code ${exitCode('CANT_CREATE')}; see its log in ${join(keep, 'coordinator', 'log.jsonl')}`);
});

test('a --keep DIR it cannot create is CANT_CREATE naming --keep', () => {
  const file = join(tmp.dir, 'plain');
  writeFileSync(file, 'x');
  const r = simulate('federation', '--keep', join(file, 'dir'));
  assert.is(r.status, exitCode('CANT_CREATE'));
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, `[OUTPUT_UNWRITABLE] --keep ${join(file, 'dir')}: it, or a folder above it, is a file; nothing was run`);
});

test.run();
