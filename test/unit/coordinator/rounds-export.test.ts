// `rounds export`'s CSV and JSON from hand-made rounds (read back with an RFC 4180 reader written
// here, so a quoting mistake cannot hide), the output file's failures, and the command's refusals.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { exitCode } from '../../../common/exit-codes.js';
import { writeOutputFile } from '../../../common/output-file.js';
import type { RoundSummary } from '../../../coordinator/round/state.js';
import { CSV_HEADER, csvField, roundsCsv, roundsJson, type RoundsExport } from '../../../coordinator/rounds-export.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, tempDir } from '../../helpers/paths.js';

const T0 = Date.UTC(2026, 11, 2, 16, 0, 0);
const summary = (round: number, patch: Partial<RoundSummary> = {}): RoundSummary => ({ round, session: 1, phase: 'fedavg', step: round, outcome: 'completed', reason: null, expected: 3, participants: 3, acks: 3, clients: 3, totalSamples: 120, bytesIn: 48_000, bytesOut: 24_000, announcedAt: T0 + round * 10_000, closedAt: T0 + round * 10_000 + 1234, score: 0.25, ...patch });
const EXPORT: RoundsExport = {
  federation: 'fed, "one"',
  exportedAt: T0 + 99_000,
  total: 3,
  rounds: [summary(1, { phase: 'ridge', step: 0, score: null }), summary(2, { outcome: 'abandoned', reason: 'quorum: 1 of 3, "late"\nagent-2 timed out', participants: 1, score: null }), summary(3)],
};

/** RFC 4180, strictly: CRLF records, quoted fields with doubled quotes; throws on anything else. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r') {
        if (text[i] === '"' || text[i] === '\n') throw new Error(`bare ${JSON.stringify(text[i])} in an unquoted field at ${i}`);
        field += text[i++];
      }
    }
    row.push(field);
    if (text[i] === ',') i++;
    else if (text.startsWith('\r\n', i)) {
      rows.push(row);
      row = [];
      i += 2;
    } else throw new Error(`expected , or CRLF at ${i}`);
  }
  if (row.length) throw new Error('the last record has no CRLF');
  return rows;
}

test('CSV: a header row, one row per round, every field as rounds shows it, read back exactly', () => {
  const rows = parseCsv(roundsCsv(EXPORT));
  assert.equal(rows[0], CSV_HEADER);
  assert.equal(CSV_HEADER, ['federation', 'round', 'session', 'phase', 'step', 'outcome', 'reason', 'expected', 'participants', 'acks', 'clients', 'total_samples', 'bytes_in', 'bytes_out', 'announced_at', 'closed_at', 'seconds', 'score_vs_persistence']);
  assert.is(rows.length, 4);
  for (const r of rows) assert.is(r.length, CSV_HEADER.length);
  const byName = (row: string[]) => Object.fromEntries(CSV_HEADER.map((h, k) => [h, row[k]]));
  const abandoned = byName(rows[2]!);
  assert.is(abandoned.federation, 'fed, "one"');
  assert.is(abandoned.reason, 'quorum: 1 of 3, "late"\nagent-2 timed out');
  assert.is(abandoned.outcome, 'abandoned');
  assert.is(abandoned.participants, '1');
  assert.is(abandoned.score_vs_persistence, '', 'no score is an empty field');
  const last = byName(rows[3]!);
  assert.equal(last, {
    federation: 'fed, "one"', round: '3', session: '1', phase: 'fedavg', step: '3', outcome: 'completed', reason: '', expected: '3', participants: '3', acks: '3', clients: '3', total_samples: '120',
    bytes_in: '48000', bytes_out: '24000', announced_at: '2026-12-02T16:00:30.000Z', closed_at: '2026-12-02T16:00:31.234Z', seconds: '1.234', score_vs_persistence: '0.25',
  });
  assert.is(byName(rows[1]!).phase, 'ridge');
});

test('CSV fields: quoted only when they must be, quotes doubled; no rounds is the header alone', () => {
  assert.is(csvField('plain'), 'plain');
  assert.is(csvField('a,b'), '"a,b"');
  assert.is(csvField('say "hi"'), '"say ""hi"""');
  assert.is(csvField('two\r\nlines'), '"two\r\nlines"');
  assert.is(csvField(null), '');
  assert.is(csvField(Infinity), 'inf');
  assert.is(csvField(0.5), '0.5');
  assert.is(roundsCsv({ ...EXPORT, rounds: [], total: 0 }), `${CSV_HEADER.join(',')}\r\n`);
});

test('JSON: the rounds as the control socket answers them, with the federation and export time', () => {
  const doc = JSON.parse(roundsJson(EXPORT)) as Record<string, unknown>;
  assert.equal(doc, { federation: 'fed, "one"', exportedAt: '2026-12-02T16:01:39.000Z', total: 3, rounds: EXPORT.rounds });
});

const tmp = tempDir('icosfl-rounds-export-');
test.after(() => tmp.cleanup());

test('the output file: replaced whole; a directory, a missing parent or a file as parent are OUTPUT_UNWRITABLE naming the flag, leaving nothing', () => {
  const out = join(tmp.dir, 'rounds.csv');
  writeFileSync(out, 'old');
  writeOutputFile('--out', out, 'new\n');
  assert.is(readFileSync(out, 'utf8'), 'new\n');
  const dir = join(tmp.dir, 'a-dir');
  mkdirSync(dir);
  const plain = join(tmp.dir, 'plain');
  writeFileSync(plain, 'x');
  const cases: [string, RegExp][] = [
    [dir, /^--out: cannot create .*a-dir: it is a directory \(EISDIR\); name a file, not a directory$/],
    [join(tmp.dir, 'missing', 'r.csv'), /^--out: cannot create .*missing\/r\.csv: no such file or directory \(ENOENT\); create its parent directory first$/],
    [join(plain, 'r.csv'), /^--out: cannot create .*plain\/r\.csv: a component of the path is not a directory \(ENOTDIR\)/],
  ];
  for (const [path, message] of cases) {
    assert.throws(() => writeOutputFile('--out', path, 'x'), (err: Error) => isIcosflError(err, 'OUTPUT_UNWRITABLE') && message.test(err.message));
  }
  assert.throws(() => writeOutputFile('--out', '', 'x'), RangeError);
  assert.equal(readdirSync(tmp.dir).sort(), ['a-dir', 'plain', 'rounds.csv'], 'a temporary file was left behind');
});

function coordinator(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
  const r = spawnSync(process.execPath, [join(DIST, 'coordinator', 'cli.js'), ...args], { encoding: 'utf8', env: { ...env, LOG_LEVEL: 'silent' }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('rounds export: a bad format is USAGE naming it; nothing running is UNAVAILABLE and writes no file', () => {
  const bad = coordinator('rounds', 'export', '--format', 'xml', '--socket', join(tmp.dir, 'none.sock'));
  assert.is(bad.status, exitCode('USAGE'));
  assertCleanStderr(bad.stderr);
  assert.match(bad.stderr, "--format must be csv or json, got 'xml'");
  const out = join(tmp.dir, 'never.csv');
  const none = coordinator('rounds', 'export', '--socket', join(tmp.dir, 'none.sock'), '--out', out);
  assert.is(none.status, exitCode('UNAVAILABLE'));
  assertCleanStderr(none.stderr);
  assert.match(none.stderr, '[DAEMON_NOT_RUNNING] icosfl-coordinator is not running');
  assert.is(none.stdout, '');
  assert.not.ok(existsSync(out));
});

test.run();
