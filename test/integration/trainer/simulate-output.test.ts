import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DIST, REPO_ROOT, tempDir } from '../../helpers/paths.js';
import { runInPty, shellQuote, stripAnsi } from '../../helpers/pty.js';

/**
 * `icosfl-simulate run` through its real entry point on the shipped GCD traces (data/gcd):
 * stdout carries the JSON object or the table only; the progress line (rounds done of the
 * session's total, time left) is on stderr, a line per tenth into a pipe, rewritten in place
 * on a terminal.
 */
const { dir, cleanup } = tempDir('icosfl-simulate-output-');
test.after(cleanup);
const CLI = join(DIST, 'simulate', 'cli.js');
const DATA = join(REPO_ROOT, 'data', 'gcd');
// 3 machines, a ridge round + 4 FedAvg rounds + the final round.
const ARGS = ['run', '--data', DATA, '--metrics', 'cpu_busy_pct', '--clients', '3', '--rounds', '4', '--plaintext', '--backend', 'native'];

test('into pipes: stdout is the JSON object alone, stderr has a progress line per tenth of the rounds, the last at 6/6', () => {
  const r = spawnSync(process.execPath, [CLI, ...ARGS, '--json'], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, LOG_LEVEL: 'debug', LOG_FORMAT: '' } });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rounds: number; clients: number };
  assert.equal([out.rounds, out.clients], [6, 3]);
  const progress = r.stderr.split('\n').filter((l) => l.startsWith('rounds '));
  assert.equal(progress.map((l) => l.match(/^rounds (\d)\/6 /)?.[1]), ['1', '2', '3', '4', '5', '6'], r.stderr);
  assert.match(progress[0]!, /^rounds 1\/6 \(16 %\), \d+s so far, ~\d+(m\d\d)?s left; round 1 \(ridge\) completed, 3 agents$/);
  assert.match(progress[5]!, /^rounds 6\/6 \(100 %\), \d+s so far, done; round 6 \(final\) completed, 3 agents$/);
  assert.not.match(r.stderr, '\r');
  // At debug the simulation's own records are on stderr too, as JSON (a pipe).
  assert.ok(r.stderr.split('\n').some((l) => l.startsWith('{') && (JSON.parse(l) as { component?: string }).component === 'simulate'), r.stderr);
});

test('at a terminal with stdout to a file: the progress line rewritten in place on the terminal, the table alone in the file', async () => {
  const file = join(dir, 'table.txt');
  const r = await runInPty(`${shellQuote(process.execPath)} ${shellQuote(CLI)} ${ARGS.map(shellQuote).join(' ')} > ${shellQuote(file)}`, { LOG_LEVEL: 'warn' });
  assert.is(r.code, 0, r.terminal);
  assert.match(r.terminal, /\rrounds 1\/6 \(16 %\).*\x1b\[K\rrounds 2\/6 /s);
  assert.match(stripAnsi(r.terminal), /\rrounds 6\/6 \(100 %\), \d+s so far, done; round 6 \(final\) completed, 3 agents\n/);
  const table = readFileSync(file, 'utf8');
  assert.match(table, /^3 clients \(0 skipped: too few windows; the first 3 of \d+ CSV files, --clients N for more\), backend native/);
  assert.not.match(table, /rounds \d\/6/);
});

test('at a terminal with LOG_LEVEL=info: each log record starts its own line, never after the progress line', async () => {
  const file = join(dir, 'table-info.txt');
  const r = await runInPty(`${shellQuote(process.execPath)} ${shellQuote(CLI)} ${ARGS.map(shellQuote).join(' ')} > ${shellQuote(file)}`, { LOG_LEVEL: 'info', NO_COLOR: '1' });
  assert.is(r.code, 0, r.terminal);
  // What the terminal shows: each \r returns to the line start, \x1b[K erases the rest.
  const shown = r.terminal.split('\n').map((l) => l.split('\r').pop()!.replace(/\x1b\[K/g, ''));
  const records = shown.filter((l) => /^\d\d:\d\d:\d\d\.\d{3} (INFO|WARN) /.test(l));
  assert.ok(records.some((l) => / simulate +federated session done /.test(l)), r.terminal);
  assert.not.match(r.terminal, /rounds \d\/6 [^\n\r]*\d\d:\d\d:\d\d\.\d{3} (INFO|WARN)/, 'no record written after the progress line');
  assert.ok(shown.some((l) => /^rounds 6\/6 \(100 %\)/.test(l)), r.terminal);
});

test.run();
