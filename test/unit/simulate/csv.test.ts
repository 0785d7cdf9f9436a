import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { convertGcd, convertNab } from '../../../simulate/convert.js';
import { markGaps, parseClientCsv, readClientDir } from '../../../simulate/csv.js';
import { tarEntries } from '../../../simulate/tar.js';
import { SHARED_DATA, tempDir } from '../../helpers/paths.js';

const tmp = tempDir('icosfl-csv-');
test.after(() => tmp.cleanup());

function expectDataError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
    assert.unreachable('expected DATA_INVALID');
  } catch (err) {
    assert.ok(isIcosflError(err, 'DATA_INVALID'), String(err));
    assert.match((err as Error).message, pattern);
  }
}

test('parses the requested metrics in order, empty cells are NaN', () => {
  const s = parseClientCsv('timestamp,mem,cpu,other\n100,1.5,20,x\n160,,21,y\n', 'm1.csv', ['cpu', 'mem']);
  assert.is(s.name, 'm1');
  assert.equal(Array.from(s.timestamps), [100, 160]);
  assert.equal(Array.from(s.values.subarray(0, 3)), [20, 1.5, 21]);
  assert.ok(Number.isNaN(s.values[3]));
});

test('errors name the file and the line', () => {
  expectDataError(() => parseClientCsv('time,cpu\n1,2\n', 'a.csv', ['cpu']), /^a\.csv:1: header has no 'timestamp'/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n1,2\n', 'b.csv', ['mem']), /^b\.csv:1: header has no 'mem'/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n1,2\n2,abc\n', 'c.csv', ['cpu']), /^c\.csv:3: cpu value 'abc' is not a number/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n1,2\n2,3,4\n', 'd.csv', ['cpu']), /^d\.csv:3: 3 fields, the header has 2/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n5,2\n4,3\n', 'e.csv', ['cpu']), /^e\.csv:3: timestamp 4 is earlier/);
  expectDataError(() => parseClientCsv('timestamp,cpu\nnoon,2\n', 'f.csv', ['cpu']), /^f\.csv:2: timestamp 'noon'/);
  expectDataError(() => parseClientCsv('', 'g.csv', ['cpu']), /^g\.csv:1: empty file/);
  expectDataError(() => parseClientCsv('timestamp,cpu,cpu\n1,2,3\n', 'h.csv', ['cpu']), /^h\.csv:1: header names 'cpu' twice \(columns 2 and 3\)/);
  expectDataError(() => parseClientCsv('timestamp,cpu,timestamp\n1,2,3\n', 'i.csv', ['cpu']), /^i\.csv:1: header names 'timestamp' twice/);
});

test('markGaps: a missing sample for each step the timestamps skip, capped per gap; off-grid intervals kept', () => {
  // Step 300 s (the median interval); 300 → 1200 skips 2 samples, 1500 → 2100 one, 2100 → 2160 is off-grid.
  const s = parseClientCsv('timestamp,cpu\n0,1\n300,2\n1200,3\n1500,4\n2100,5\n2160,6\n2460,7\n', 'g.csv', ['cpu']);
  const r = markGaps(s, 10);
  assert.equal([r.gaps, r.missing], [2, 3]);
  assert.equal(Array.from(r.series.timestamps), [0, 300, 600, 900, 1200, 1500, 1800, 2100, 2160, 2460]);
  assert.equal(Array.from(r.series.values, (v) => (Number.isNaN(v) ? null : v)), [1, 2, null, null, 3, 4, null, 5, 6, 7]);
  // At most maxMissing per gap: a day-long hole in a 5-minute trace becomes 2 missing samples.
  const long = markGaps(parseClientCsv('timestamp,cpu\n0,1\n300,2\n600,3\n87000,4\n', 'h.csv', ['cpu']), 2);
  assert.equal([long.gaps, long.missing], [1, 2]);
  assert.equal(Array.from(long.series.values, (v) => (Number.isNaN(v) ? null : v)), [1, 2, 3, null, null, 4]);
  // Regular series, a single row and equal timestamps are returned as they are.
  for (const text of ['timestamp,cpu\n0,1\n60,2\n120,3\n', 'timestamp,cpu\n0,1\n', 'timestamp,cpu\n5,1\n5,2\n5,3\n']) {
    const same = parseClientCsv(text, 'i.csv', ['cpu']);
    assert.is(markGaps(same, 4).series, same);
  }
  assert.throws(() => markGaps(s, 0), /maxMissing must be an integer ≥ 1, got 0/);
});

test('readClientDir: sorted, limited, and an empty directory is an error', () => {
  const dir = join(tmp.dir, 'clients');
  mkdirSync(dir);
  writeFileSync(join(dir, 'b.csv'), 'timestamp,cpu\n1,1\n');
  writeFileSync(join(dir, 'a.csv'), 'timestamp,cpu\n1,2\n');
  writeFileSync(join(dir, 'notes.txt'), 'ignored');
  assert.equal(readClientDir(dir, ['cpu']).map((c) => c.name), ['a', 'b']);
  assert.is(readClientDir(dir, ['cpu'], 1).length, 1);
  mkdirSync(join(tmp.dir, 'empty'));
  expectDataError(() => readClientDir(join(tmp.dir, 'empty'), ['cpu']), /no \.csv files/);
});

test('tar reader: regular files of a gzipped ustar archive', () => {
  const block = (name: string, body: string) => {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write(body.length.toString(8).padStart(11, '0'), 124);
    h.write('0', 156);
    const data = Buffer.alloc(Math.ceil(body.length / 512) * 512);
    data.write(body);
    return Buffer.concat([h, data]);
  };
  const archive = gzipSync(Buffer.concat([block('d/one', '1 2\n'), block('d/two', 'x'.repeat(600)), Buffer.alloc(1024)]));
  const entries = [...tarEntries(archive)];
  assert.equal(entries.map((e) => e.name), ['d/one', 'd/two']);
  assert.is(Buffer.from(entries[1]!.data).toString(), 'x'.repeat(600));
});

test('GCD converter on the real tarball: 288 rows at 300 s, cpu and mem', () => {
  const out = join(tmp.dir, 'gcd');
  assert.is(convertGcd(join(SHARED_DATA, 'google-gcd-vms-cpu-mem', 'GCD_VMs.tar.gz'), out, 3), 3);
  const files = readdirSync(out).sort();
  assert.is(files.length, 3);
  const s = readClientDir(out, ['cpu', 'mem'])[0]!;
  assert.is(s.timestamps.length, 288);
  assert.is(s.timestamps[1]! - s.timestamps[0]!, 300);
  assert.ok(s.values.every(Number.isFinite));
});

test('NAB converter: unix seconds, duplicate timestamps collapsed, match filter', () => {
  const out = join(tmp.dir, 'nab');
  const n = convertNab(join(SHARED_DATA, 'nab-server-metrics'), out, { match: 'ec2_network_in_5abac7' });
  assert.is(n, 1);
  const text = readFileSync(join(out, 'ec2_network_in_5abac7.csv'), 'utf8').split('\n');
  assert.is(text[0], 'timestamp,cpu');
  const ts = text.slice(1, -1).map((l) => Number(l.split(',')[0]));
  assert.ok(ts.every((t, i) => i === 0 || t > ts[i - 1]!), 'strictly increasing after de-duplication');
  assert.is(ts.length, 4730 - 11);
  expectDataError(() => convertNab(join(SHARED_DATA, 'nab-server-metrics'), out, { match: 'no-such-file' }), /no NAB \.csv files matching/);
});

test.run();
