import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DIST, tempDir } from '../../helpers/paths.js';
import { runInPty, shellQuote, stripAnsi } from '../../helpers/pty.js';
import { writeCoordinatorConfig } from '../coordinator/harness.js';
import { CLI } from './harness.js';

/**
 * Logs as people and journald meet them, through the real entry points: on a terminal (a
 * pseudo-terminal from `script`) one readable line per record, coloured unless NO_COLOR; JSON
 * lines under journald (JOURNAL_STREAM), into a pipe, or when log_format / LOG_FORMAT says json.
 * The daemons run for a few seconds and stop on SIGINT (timeout -s INT), so their start and
 * stop records are in the output.
 */
const { dir, cleanup } = tempDir('icosfl-terminal-logs-');
test.after(cleanup);

const COORDINATOR_CLI = join(DIST, 'coordinator', 'cli.js');
const node = shellQuote(process.execPath);
let runs = 0;
/** `icosfl-agent run` on a fresh state directory for `seconds`, then SIGINT. */
const agentRun = (seconds: number, extra = '') => `timeout --preserve-status -s INT ${seconds} ${node} ${shellQuote(CLI)} run --state-dir ${shellQuote(join(dir, `agent-${runs++}`))} ${extra}`;

/** A readable record: time of day, level, component, message, then key=value fields. */
const READABLE = /^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S+\s+\S/;

function records(terminal: string): string[] {
  return terminal.split('\n').filter((l) => l.trim() !== '');
}

test('agent daemon on a terminal: one readable line per record, in colour, level and component in their columns', async () => {
  const r = await runInPty(agentRun(4));
  assert.is(r.code, 0, r.terminal);
  const lines = records(r.terminal);
  assert.ok(lines.length >= 4, r.terminal);
  for (const l of lines) assert.match(stripAnsi(l), READABLE);
  const plain = lines.map(stripAnsi);
  const ready = plain.find((l) => / daemon +ready /.test(l));
  assert.ok(ready, r.terminal);
  assert.match(ready!, /^\d\d:\d\d:\d\d\.\d{3} INFO  daemon +ready ring=\S+metrics\.ring socket=\S+agent\.sock metrics=\["cpu_busy_pct",/);
  assert.ok(plain.some((l) => / daemon +stopped why=SIGINT code=0 /.test(l)), r.terminal);
  assert.not.match(r.terminal, /"level":|"msg":/, 'no JSON on a terminal');
  assert.match(r.terminal, '\x1b[32mINFO', 'the level is coloured');
});

test('NO_COLOR: the same readable lines without escape sequences', async () => {
  const r = await runInPty(agentRun(3), { NO_COLOR: '1' });
  assert.is(r.code, 0, r.terminal);
  assert.not.match(r.terminal, '\x1b[');
  const lines = records(r.terminal);
  for (const l of lines) assert.match(l, READABLE);
  assert.ok(lines.some((l) => / daemon +ready /.test(l)), r.terminal);
});

test('under journald (JOURNAL_STREAM), with LOG_FORMAT=json, or log_format = "json": JSON lines even on a terminal', async () => {
  for (const [how, env, extra] of [
    ['JOURNAL_STREAM', { JOURNAL_STREAM: '8:44321' }, ''],
    ['LOG_FORMAT=json', { LOG_FORMAT: 'json' }, ''],
    ['--set agent.log_format=json', { LOG_FORMAT: 'pretty' }, '--set agent.log_format=json'],
  ] as const) {
    const r = await runInPty(agentRun(3, extra), env);
    assert.is(r.code, 0, `${how}: ${r.terminal}`);
    const parsed = records(r.terminal).map((l) => JSON.parse(l) as { msg: string; component: string; level: number; pid: number });
    assert.ok(parsed.some((p) => p.msg === 'ready' && p.component === 'daemon' && p.level === 30 && typeof p.pid === 'number'), `${how}: ${r.terminal}`);
  }
});

test('into a pipe: JSON by default; log_format = "pretty" forces readable lines, without colour off a terminal', async () => {
  const run = (extra: string[]) =>
    new Promise<string>((resolve) => {
      const p = spawn('timeout', ['--preserve-status', '-s', 'INT', '3', process.execPath, CLI, 'run', '--state-dir', join(dir, `pipe-${runs++}`), ...extra], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_FORMAT: '', LOG_LEVEL: 'info' } });
      let out = '';
      p.stdout.on('data', (d) => (out += String(d)));
      p.on('close', () => resolve(out));
    });
  const json = records(await run([]));
  assert.ok(json.length >= 3 && json.every((l) => typeof (JSON.parse(l) as { msg: unknown }).msg === 'string'), json.join('\n'));
  const pretty = records(await run(['--set', 'agent.log_format=pretty']));
  assert.ok(pretty.length >= 3, pretty.join('\n'));
  for (const l of pretty) assert.match(l, READABLE);
  assert.not.match(pretty.join('\n'), '\x1b[');
});

test('a LOG_FORMAT that is no format is said so in the log, and auto applies', async () => {
  const r = await runInPty(agentRun(3), { LOG_FORMAT: 'xml', NO_COLOR: '1' });
  assert.is(r.code, 0, r.terminal);
  assert.match(r.terminal, /^\d\d:\d\d:\d\d\.\d{3} WARN  - +LOG_FORMAT is not one of auto, json, pretty; using auto LOG_FORMAT=xml valid=\["auto","json","pretty"\]$/m);
  assert.ok(records(r.terminal).some((l) => / daemon +ready /.test(l)), r.terminal);
});

test('coordinator service on a terminal: readable lines too', async () => {
  const config = writeCoordinatorConfig(dir, 'coordinator.toml', {
    coordinator: { state_dir: join(dir, 'coordinator-state'), codec: 'plaintext', log_level: 'info' },
    broker: { embedded_port: 0 },
    federation: { id: 'terminal-logs', min_agents: 1 },
  });
  const r = await runInPty(`timeout --preserve-status -s INT 4 ${node} ${shellQuote(COORDINATOR_CLI)} serve --config ${shellQuote(config)}`, { NO_COLOR: '1' });
  assert.is(r.code, 0, r.terminal);
  const lines = records(r.terminal);
  for (const l of lines) assert.match(l, READABLE);
  assert.ok(lines.some((l) => /^\S+ INFO  coordinator +coordinator ready .*federation=terminal-logs/.test(l)), r.terminal);
  assert.ok(lines.some((l) => /^\S+ WARN  coordinator +codec is plaintext/.test(l)), r.terminal);
});

test('sample at a terminal with stdout to a file: the log lines (sampler thread included) on the terminal, the table alone in the file', async () => {
  const out = join(dir, 'sample.txt');
  const state = join(dir, 'sample-state');
  const r = await runInPty(`${node} ${shellQuote(CLI)} sample --seconds 1 --rows 2 --state-dir ${shellQuote(state)} > ${shellQuote(out)}`, { LOG_LEVEL: 'debug', NO_COLOR: '1' });
  assert.is(r.code, 0, r.terminal);
  assert.match(r.terminal, /^\d\d:\d\d:\d\d\.\d{3} DEBUG sample +ring file created path=\S+metrics\.ring capacity=\d+ channels=11 reservedBytes=\d+$/m);
  const table = readFileSync(out, 'utf8');
  assert.match(table, /^ring \S+metrics\.ring\n {2}\d+ samples held/);
  assert.not.match(table, /DEBUG|"level"|ring file created/);
});

test.run();
