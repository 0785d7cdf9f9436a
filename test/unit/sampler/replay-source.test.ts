import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IcosflError } from '../../../common/errors.js';
import { historyRows, missingColumns, parseReplayCsv, parseReplayHeader, readReplayFile, readReplayHeader, ReplayCursor } from '../../../agent/sampler/replay-source.js';
import { tempDir } from '../../helpers/paths.js';

/** The replay CSV parser on literal strings, the reading around it, and the row cursor. */
const { dir, cleanup } = tempDir('icosfl-replay-source-');
test.after(cleanup);

const GOOD = 'timestamp,cpu_busy_pct,mem_used_pct\n1304208000,19.12,11.58\n1304208300,21.04,11.61\n1304208600,-1.5e1,.5\n';

function dataError(fn: () => unknown): IcosflError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.is((err as IcosflError).code, 'DATA_INVALID');
    return err as IcosflError;
  }
  assert.unreachable('expected a DATA_INVALID error');
  throw new Error('unreachable');
}

const rowsOf = (t: { rows: number; channels: number; values: Float64Array }) =>
  Array.from({ length: t.rows }, (_, r) => Array.from(t.values.subarray(r * t.channels, (r + 1) * t.channels)));

test('a good file: every row, the selected columns as numbers, the timestamp column ignored', () => {
  const t = parseReplayCsv(GOOD, 'good.csv', ['cpu_busy_pct', 'mem_used_pct']);
  assert.equal([t.file, t.rows, t.channels], ['good.csv', 3, 2]);
  assert.equal(rowsOf(t), [
    [19.12, 11.58],
    [21.04, 11.61],
    [-15, 0.5],
  ]);
});

test('columns are selected in metric order, not file order; unselected columns are not parsed', () => {
  const text = 'timestamp,mem_used_pct,load1,cpu_busy_pct\n2011-05-01 00:00,1,x,2\n2011-05-01 00:05,3,y,4\n';
  const t = parseReplayCsv(text, 'order.csv', ['cpu_busy_pct', 'mem_used_pct']);
  assert.equal(rowsOf(t), [
    [2, 1],
    [4, 3],
  ]);
  assert.equal(rowsOf(parseReplayCsv(text, 'order.csv', ['mem_used_pct'])), [[1], [3]]);
});

test('empty cells are missing samples (NaN); CRLF, a BOM, spaces and trailing blank lines are accepted', () => {
  const t = parseReplayCsv('\uFEFFtimestamp, cpu_busy_pct ,mem_used_pct\r\n0,,1\r\n300, 2 , \r\n\r\n\n', 'crlf.csv', ['cpu_busy_pct', 'mem_used_pct']);
  assert.is(t.rows, 2);
  assert.ok(Number.isNaN(t.values[0]!));
  assert.is(t.values[1], 1);
  assert.is(t.values[2], 2);
  assert.ok(Number.isNaN(t.values[3]!));
  // One column: a blank line inside the file is a row with one empty cell.
  const one = parseReplayCsv('cpu_busy_pct\n1\n\n3\n', 'one.csv', ['cpu_busy_pct']);
  assert.is(one.rows, 3);
  assert.ok(Number.isNaN(one.values[1]!));
});

test('a non-numeric cell: DATA_INVALID naming file:line and the column', () => {
  const e = dataError(() => parseReplayCsv('timestamp,cpu_busy_pct\n0,1\n300,abc\n', 'bad.csv', ['cpu_busy_pct']));
  assert.match(e.message, /^bad\.csv:3: column 'cpu_busy_pct': 'abc' is not a number/);
  assert.equal(e.details, { file: 'bad.csv', line: 3, column: 'cpu_busy_pct' });
  for (const cell of ['0x10', 'Infinity', '1,5', '1e', 'NaN']) {
    const err = dataError(() => parseReplayCsv(`cpu_busy_pct\n${cell}\n`, 'cell.csv', ['cpu_busy_pct']));
    assert.match(err.message, /^cell\.csv:2: /, cell);
  }
  // The parser simulate uses (common/decimal.ts): the ring stores float32, so nothing it would turn to ±Inf or 0.
  const rules: [string, RegExp][] = [
    ['0x10', /'0x10' is not decimal notation \(hexadecimal/],
    ['1e400', /'1e400' is beyond the float32 range/],
    ['3.5e38', /'3\.5e38' is beyond the float32 range/],
    ['1e-50', /'1e-50' is too close to 0 for float32/],
    ['inf', /'inf' is not a finite number/],
    ['1_000', /'1_000' has a thousands separator/],
  ];
  for (const [cell, why] of rules) {
    const err = dataError(() => parseReplayCsv(`timestamp,cpu_busy_pct\n0,1\n300,${cell}\n`, 'rule.csv', ['cpu_busy_pct']));
    assert.match(err.message, new RegExp(`^rule\\.csv:3: column 'cpu_busy_pct': ${why.source}.* \\(an empty cell is a missing sample\\)$`), cell);
  }
});

test('a row with the wrong number of cells: DATA_INVALID naming file:line', () => {
  const more = dataError(() => parseReplayCsv('timestamp,cpu_busy_pct\n0,1\n300,2,3\n', 'wide.csv', ['cpu_busy_pct']));
  assert.match(more.message, /^wide\.csv:3: expected 2 cells \(one per header column\), got 3$/);
  const fewer = dataError(() => parseReplayCsv('timestamp,cpu_busy_pct\n0\n', 'narrow.csv', ['cpu_busy_pct']));
  assert.match(fewer.message, /^narrow\.csv:2: expected 2 cells/);
});

test('a metric missing from the header: DATA_INVALID at line 1 naming the column and the columns there', () => {
  const e = dataError(() => parseReplayCsv(GOOD, 'gcd.csv', ['cpu_busy_pct', 'load1', 'load5']));
  assert.match(e.message, /^gcd\.csv:1: no column 'load1', 'load5' \(columns: timestamp, cpu_busy_pct, mem_used_pct\)$/);
  assert.equal(e.details?.missing, ['load1', 'load5']);
  assert.match(dataError(() => parseReplayCsv('cpu_busy_pct,cpu_busy_pct\n1,2\n', 'twice.csv', ['cpu_busy_pct'])).message, /^twice\.csv:1: column 'cpu_busy_pct' appears twice/);
});

test('an empty file or a header without rows: DATA_INVALID', () => {
  assert.match(dataError(() => parseReplayCsv('', 'empty.csv', ['cpu_busy_pct'])).message, /^empty\.csv:1: empty file/);
  assert.match(dataError(() => parseReplayCsv('\n\n', 'blank.csv', ['cpu_busy_pct'])).message, /^blank\.csv:1: empty file/);
  assert.match(dataError(() => parseReplayCsv('cpu_busy_pct\n', 'header.csv', ['cpu_busy_pct'])).message, /^header\.csv:2: no data rows/);
  assert.throws(() => parseReplayCsv(GOOD, 'x.csv', []), (e: unknown) => e instanceof RangeError);
});

test('header helpers: names trimmed, missing columns in metric order', () => {
  assert.equal(parseReplayHeader('\uFEFFtimestamp , cpu_busy_pct\r'), ['timestamp', 'cpu_busy_pct']);
  assert.equal(missingColumns(['timestamp', 'cpu_busy_pct'], ['mem_used_pct', 'cpu_busy_pct', 'load1']), ['mem_used_pct', 'load1']);
});

test('reading files: the whole file, or only the header line; unreadable files are DATA_INVALID naming them', () => {
  const path = join(dir, 'trace.csv');
  writeFileSync(path, GOOD);
  assert.is(readReplayFile(path, ['mem_used_pct']).rows, 3);
  assert.equal(readReplayHeader(path), ['timestamp', 'cpu_busy_pct', 'mem_used_pct']);
  const noNewline = join(dir, 'header-only.csv');
  writeFileSync(noNewline, 'timestamp,cpu_busy_pct');
  assert.equal(readReplayHeader(noNewline), ['timestamp', 'cpu_busy_pct']);
  const empty = join(dir, 'empty.csv');
  writeFileSync(empty, '');
  assert.match(dataError(() => readReplayHeader(empty)).message, /empty\.csv:1: empty file/);
  const long = join(dir, 'long.csv');
  writeFileSync(long, 'x'.repeat(70_000));
  assert.match(dataError(() => readReplayHeader(long)).message, /long\.csv:1: no line break in the first 65536 bytes/);
  const absent = join(dir, 'absent.csv');
  assert.match(dataError(() => readReplayHeader(absent)).message, `cannot read the replay file ${absent} (ENOENT)`);
  assert.match(dataError(() => readReplayFile(absent, ['cpu_busy_pct'])).message, `cannot read the replay file ${absent} (ENOENT)`);
  assert.match(dataError(() => readReplayFile(dir, ['cpu_busy_pct'])).message, `cannot read the replay file ${dir} (EISDIR)`);
});

test('the cursor: history taken first, then one row at a time in order, then null for good (no looping)', () => {
  const c = new ReplayCursor(parseReplayCsv(GOOD, 'good.csv', ['cpu_busy_pct', 'mem_used_pct']));
  assert.equal([c.rows, c.position, c.remaining, c.done], [3, 0, 3, false]);
  const h = c.take(2);
  assert.is(h.rows, 2);
  assert.equal(Array.from(h.values), [19.12, 11.58, 21.04, 11.61]);
  assert.equal([c.position, c.remaining], [2, 1]);
  const row = c.next();
  assert.equal(Array.from(row!), [-15, 0.5]);
  assert.ok(c.done);
  assert.is(c.next(), null);
  assert.is(c.next(), null);
  assert.is(c.take(5).rows, 0);
  // Each row is a fresh array: transferring its buffer leaves the table intact.
  const again = new ReplayCursor(parseReplayCsv(GOOD, 'good.csv', ['cpu_busy_pct']));
  const first = again.next()!;
  structuredClone(first, { transfer: [first.buffer] });
  assert.equal(Array.from(again.next()!), [21.04]);
  assert.throws(() => again.take(-1), (e: unknown) => e instanceof RangeError && /n must be a non-negative integer/.test(e.message));
});

test('history rows: the fraction floored, at least one above 0, none at 0, all at 1', () => {
  assert.is(historyRows(288, 0.8), 230);
  assert.is(historyRows(288, 0), 0);
  assert.is(historyRows(288, 1), 288);
  assert.is(historyRows(3, 0.1), 1);
  assert.is(historyRows(100, 0.29), 29);
  assert.throws(() => historyRows(10, 1.5), (e: unknown) => e instanceof RangeError);
});

test.run();
