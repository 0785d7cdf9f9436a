import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { resolveLogFormat } from '../../../common/config/log-level.js';
import { resolveLogOutput } from '../../../common/log.js';
import { formatFieldValue, formatRecord } from '../../../common/log-pretty.js';

/**
 * The readable log line (common/log-pretty.ts) on literal records and on records a real pino
 * logger wrote, and the choice of format (common/log.ts). What a terminal shows end to end is
 * test/integration/daemon/terminal-logs.test.ts.
 */
const at = '2026-12-02T13:05:42.118Z';
const clock = (iso: string) => {
  const d = new Date(iso);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};

test('time of day, level, component, message, then the other fields as key=value; pid and pino internals left out', () => {
  const line = formatRecord({ level: 30, time: at, pid: 4242, hostname: 'h', component: 'daemon', msg: 'ready', ring: '/var/lib/icosfl/metrics.ring', metrics: ['cpu_busy_pct', 'load1'], n: 3, ok: true, none: null }, false);
  assert.is(line, `${clock(at)} INFO  daemon      ready ring=/var/lib/icosfl/metrics.ring metrics=["cpu_busy_pct","load1"] n=3 ok=true none=null\n`);
});

test('every level has its name; a record without a component shows "-"', () => {
  const names = [10, 20, 30, 40, 50, 60].map((level) => formatRecord({ level, time: at, msg: 'm' }, false).split(' ')[1]);
  assert.equal(names, ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']);
  assert.is(formatRecord({ level: 40, time: at, msg: 'm' }, false), `${clock(at)} WARN  -           m\n`);
});

test('values that would read ambiguously are quoted; newlines never split a record', () => {
  assert.is(formatFieldValue('plain-word_1.5'), 'plain-word_1.5');
  assert.is(formatFieldValue('two words'), '"two words"');
  assert.is(formatFieldValue('a=b'), '"a=b"');
  assert.is(formatFieldValue(''), '""');
  assert.is(formatFieldValue({ a: { b: [1, 2] } }), '{"a":{"b":[1,2]}}');
  const line = formatRecord({ level: 50, time: at, component: 'x', msg: 'first\nsecond', path: '/tmp/a\nb' }, false);
  assert.is(line.split('\n').length, 2, 'one line and its end');
  assert.match(line, 'first\\nsecond path="/tmp/a\\nb"');
});

test('an error a real pino logger serialised shows as its type, message and code, without the stack', () => {
  const lines: string[] = [];
  const log = pino({ level: 'info', base: { pid: 1 }, timestamp: pino.stdTimeFunctions.isoTime }, { write: (s: string) => void lines.push(s) });
  const err = Object.assign(new RangeError('port 99999 is out of range'), { code: 'ERR_SOCKET_BAD_PORT' });
  log.child({ component: 'prometheus' }).error({ err, port: 99999 }, 'metrics endpoint could not listen');
  const line = formatRecord(JSON.parse(lines[0]!) as Record<string, unknown>, false);
  assert.match(line, / ERROR prometheus  metrics endpoint could not listen err="RangeError: port 99999 is out of range \[ERR_SOCKET_BAD_PORT\]" port=99999\n$/);
  assert.not.match(line, 'at ');
});

test('colour only when asked: the level in its colour, keys dimmed', () => {
  const record = { level: 40, time: at, component: 'daemon', msg: 'config keys changed', keys: ['a'] };
  const coloured = formatRecord(record, true);
  assert.match(coloured, '\x1b[33mWARN \x1b[0m');
  assert.match(coloured, '\x1b[2mkeys=\x1b[0m["a"]');
  assert.not.match(formatRecord(record, false), '\x1b');
});

test('format: json and pretty as asked; auto is JSON under journald; colour never off a terminal', () => {
  // Descriptor 1 and 2 of a test run are pipes or files; a pseudo-terminal is the integration test's.
  const env = {};
  assert.equal(resolveLogOutput('json', 1, env), { fd: 1, format: 'json', colour: false });
  assert.equal(resolveLogOutput('pretty', 2, env), { fd: 2, format: 'pretty', colour: false });
  assert.equal(resolveLogOutput('auto', 1, { JOURNAL_STREAM: '8:12345' }), { fd: 1, format: 'json', colour: false });
  assert.equal(resolveLogOutput('pretty', 1, { JOURNAL_STREAM: '8:12345', NO_COLOR: '1' }), { fd: 1, format: 'pretty', colour: false });
});

test('log_format: the config value wins, else $LOG_FORMAT when it names a format, else auto', () => {
  assert.is(resolveLogFormat('json', { LOG_FORMAT: 'pretty' }), 'json');
  assert.is(resolveLogFormat('', { LOG_FORMAT: 'pretty' }), 'pretty');
  assert.is(resolveLogFormat('', { LOG_FORMAT: 'xml' }), 'auto');
  assert.is(resolveLogFormat('', {}), 'auto');
});

test.run();
