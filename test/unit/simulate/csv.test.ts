import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { convertGcd, convertNab } from '../../../simulate/convert.js';
import { markGaps, parseClientCsv, readClientDir } from '../../../simulate/csv.js';
import { NAB_KIND_NAMES, nabKindOf } from '../../../simulate/nab-kinds.js';
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
  expectDataError(() => parseClientCsv('timestamp,cpu\n1,2\n2,abc\n', 'c.csv', ['cpu']), /^c\.csv:3: cpu value 'abc' is not a number in decimal notation/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n1,2\n2,3,4\n', 'd.csv', ['cpu']), /^d\.csv:3: 3 fields, the header has 2/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n5,2\n4,3\n', 'e.csv', ['cpu']), /^e\.csv:3: timestamp 4 is earlier than line 2's 5; rows must be in strictly increasing time order/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n5,2\n6,2\n6,3\n', 'e2.csv', ['cpu']), /^e2\.csv:4: timestamp 6 repeats line 3's timestamp/);
  expectDataError(() => parseClientCsv('timestamp,cpu\nnoon,2\n', 'f.csv', ['cpu']), /^f\.csv:2: timestamp 'noon' is not a number in decimal notation; expected unix seconds/);
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
  assert.equal([long.step, long.largest], [300, 86400]);
  // Regular series and a single row are returned as they are (parseClientCsv refuses equal timestamps).
  for (const text of ['timestamp,cpu\n0,1\n60,2\n120,3\n', 'timestamp,cpu\n0,1\n']) {
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
  assert.is(convertGcd(join(SHARED_DATA, 'google-gcd-vms-cpu-mem', 'GCD_VMs.tar.gz'), out, { limit: 3 }).length, 3);
  const files = readdirSync(out).sort();
  assert.is(files.length, 3);
  const s = readClientDir(out, ['cpu', 'mem'])[0]!;
  assert.is(s.timestamps.length, 288);
  assert.is(s.timestamps[1]! - s.timestamps[0]!, 300);
  assert.ok(s.values.every(Number.isFinite));
});

test('cells: every number is plain decimal that float32 holds, or the error names file, line and rule', () => {
  const bad: [string, RegExp][] = [
    ['0x10', /hexadecimal, binary or octal prefix/],
    ['0b11', /hexadecimal, binary or octal prefix/],
    ['1e400', /beyond the float32 range/],
    ['3.5e38', /beyond the float32 range/],
    ['-1e39', /beyond the float32 range/],
    ['1e-50', /too close to 0 for float32/],
    ['NaN', /not a finite number \(an empty cell is a missing sample\)/],
    ['inf', /not a finite number/],
    ['-Infinity', /not a finite number/],
    ['1_000', /thousands separator/],
    ["1'000.5", /thousands separator/],
    ['12abc', /not a number in decimal notation/],
    ['1e', /not a number in decimal notation/],
  ];
  for (const [cell, why] of bad) {
    expectDataError(() => parseClientCsv(`timestamp,cpu\n0,1\n300,${cell}\n`, 'cells.csv', ['cpu']), new RegExp(`^cells\\.csv:3: cpu value '${cell.replace(/[.+]/g, '\\$&')}' .*${why.source}`));
  }
  // A thousands separator or decimal comma splits the row into one field too many.
  expectDataError(() => parseClientCsv('timestamp,cpu\n0,1,234.5\n', 't.csv', ['cpu']), /^t\.csv:2: 3 fields, the header has 2 \(a thousands separator, decimal comma or quoted comma in a cell\?\)/);
  // Timestamps: the same parser in float64 range; empty is an error there (a row is a sample time).
  expectDataError(() => parseClientCsv('timestamp,cpu\n0x10,1\n', 'ts.csv', ['cpu']), /^ts\.csv:2: timestamp '0x10' is not decimal notation/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n,1\n', 'ts.csv', ['cpu']), /^ts\.csv:2: timestamp '' is empty/);
  expectDataError(() => parseClientCsv('timestamp,cpu\n1e400,1\n', 'ts.csv', ['cpu']), /^ts\.csv:2: timestamp '1e400' is beyond the float64 range/);
  expectDataError(() => parseClientCsv('timestamp,cpu\nNaN,1\n', 'ts.csv', ['cpu']), /^ts\.csv:2: timestamp 'NaN' is not a finite number; expected unix seconds$/);
  // What is accepted, read as written: signs, leading and trailing points, exponents, spaces, float32's largest.
  const ok = parseClientCsv('\uFEFFtimestamp,cpu\n0,+3\n1,.5\n2,5.\n3,-0\n4, 1.5e2 \n5,3.4028234663852886e38\n6,0e9\n', 'ok.csv', ['cpu']);
  assert.equal(Array.from(ok.values), [3, 0.5, 5, -0, 150, Math.fround(3.4028234663852886e38), 0]);
  assert.is(ok.emptyCells, 0);
});

test('empty metric cells are missing samples, counted; whitespace-only is empty', () => {
  const s = parseClientCsv('timestamp,cpu,mem\n0,,1\n300, ,2\n600,3,\n900,4,5\n', 'e.csv', ['cpu', 'mem']);
  assert.is(s.emptyCells, 3);
  assert.equal(Array.from(s.values, (v) => (Number.isNaN(v) ? null : v)), [null, 1, null, 2, 3, null, 4, 5]);
});

test('GCD converter: a bad cell names the archive entry and its line; nothing is written', () => {
  const block = (name: string, body: string) => {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write(body.length.toString(8).padStart(11, '0'), 124);
    h.write('0', 156);
    const data = Buffer.alloc(Math.ceil(body.length / 512) * 512);
    data.write(body);
    return Buffer.concat([h, data]);
  };
  const cases: [string, RegExp][] = [
    ['1 2\n0x10 3\n', /GCD_VMs\/vm_b:2: cpu value '0x10' is not decimal notation/],
    ['1 2\n3 1e400\n', /GCD_VMs\/vm_b:2: mem value '1e400' is beyond the float32 range/],
    ['1 2\n3 NaN\n', /GCD_VMs\/vm_b:2: mem value 'NaN' is not a finite number/],
    ['1 2\n3\n', /GCD_VMs\/vm_b:2: expected two numbers \(cpu mem\)/],
    ['1 2\n\n3 4\n', /GCD_VMs\/vm_b:2: empty line inside the file/],
    ['1 2\n1,000 4\n', /GCD_VMs\/vm_b:2: cpu value '1,000' has a thousands separator/],
  ];
  for (const [body, pattern] of cases) {
    const archive = join(tmp.dir, 'bad.tar.gz');
    writeFileSync(archive, gzipSync(Buffer.concat([block('GCD_VMs/vm_a', '1 2\n3 4\n'), block('GCD_VMs/vm_b', body), Buffer.alloc(1024)])));
    const out = join(tmp.dir, 'gcd-bad');
    expectDataError(() => convertGcd(archive, out, {}), pattern);
    assert.not.ok(existsSync(join(out, 'vm_a.csv')), 'no file written before the bad one was found');
  }
});

const NAB = join(SHARED_DATA, 'nab-server-metrics');

test('NAB converter: each series is named by what it measures (nab-kinds.ts), unknown ones `unknown`', () => {
  const out = join(tmp.dir, 'nab-kinds');
  const files = convertNab(NAB, out);
  assert.is(files.length, 20);
  const column = (name: string) => readFileSync(join(out, name), 'utf8').split('\n')[0];
  const expected: Record<string, string> = {
    'ec2_cpu_utilization_24ae8d.csv': 'cpu',
    'rds_cpu_utilization_cc0c53.csv': 'cpu',
    'cpu_utilization_asg_misconfiguration.csv': 'cpu',
    'ec2_network_in_257a54.csv': 'network_in',
    'iio_us-east-1_i-a2eb1cd9_NetworkIn.csv': 'network_in',
    'ec2_disk_write_bytes_c0d644.csv': 'disk_write_bytes',
    'elb_request_count_8c0756.csv': 'requests',
    'ec2_request_latency_system_failure.csv': 'latency',
    'machine_temperature_system_failure.csv': 'temperature',
    'grok_asg_anomaly.csv': 'unknown',
  };
  for (const [name, kind] of Object.entries(expected)) {
    assert.is(column(name), `timestamp,${kind}`, name);
    assert.equal(files.find((f) => f.file.endsWith(`/${name}`))!.columns, [kind]);
  }
  // Every file on disk has a kind from the table's names (none silently `cpu`).
  const kinds = readdirSync(out).map((n) => column(n)!.split(',')[1]!);
  assert.is(kinds.filter((k) => k === 'cpu').length, 11);
  for (const k of kinds) assert.ok(NAB_KIND_NAMES.includes(k), k);
  assert.is(nabKindOf('realTweets/Twitter_volume_AAPL.csv'), 'tweets');
  assert.is(nabKindOf('artificialNoAnomaly/art_daily_small_noise.csv'), 'unknown');
});

test('NAB converter: --kind keeps one kind; --metric names the column; no such kind says what is there', () => {
  const out = join(tmp.dir, 'nab-network');
  const files = convertNab(NAB, out, { kind: 'network_in' });
  assert.equal(files.map((f) => f.file.split('/').pop()).sort(), ['ec2_network_in_257a54.csv', 'ec2_network_in_5abac7.csv', 'iio_us-east-1_i-a2eb1cd9_NetworkIn.csv']);
  assert.equal(readdirSync(out).sort().length, 3);
  // The converted directory is run input: every file has the column.
  assert.is(readClientDir(out, ['network_in']).length, 3);
  const renamed = convertNab(NAB, join(tmp.dir, 'nab-renamed'), { kind: 'cpu', metric: 'cpu_busy_pct', limit: 2 });
  assert.equal(renamed.map((f) => f.columns[0]), ['cpu_busy_pct', 'cpu_busy_pct']);
  expectDataError(() => convertNab(NAB, join(tmp.dir, 'nab-none'), { kind: 'tweets' }), /no NAB files of kind 'tweets' under .* \(kinds there: cpu 11, disk_write_bytes 2, network_in 3, requests 1, unknown 1, latency 1, temperature 1\)/);
  expectDataError(() => convertNab(NAB, out, { match: 'no-such-file' }), /no NAB \.csv files matching/);
});

test('NAB converter: repeated and backward timestamps in the real files are counted with their first line, the later row kept', () => {
  const out = join(tmp.dir, 'nab-repeats');
  const [net] = convertNab(NAB, out, { match: 'ec2_network_in_5abac7' });
  assert.equal([net!.rows, net!.written, net!.repeated.rows], [4730, 4730 - 11, 11]);
  // The first repeated row, read straight from the source file: its timestamp equals the row before.
  const src = readFileSync(join(NAB, 'realAWSCloudwatch', 'ec2_network_in_5abac7.csv'), 'utf8').split('\n');
  const first = src.findIndex((l, i) => i > 1 && l.split(',')[0] === src[i - 1]!.split(',')[0]) + 1;
  assert.is(net!.repeated.firstLine, first);
  const ts = readFileSync(net!.file, 'utf8').split('\n').slice(1, -1).map((l) => Number(l.split(',')[0]));
  assert.ok(ts.every((t, i) => i === 0 || t > ts[i - 1]!), 'strictly increasing after de-duplication');
  // machine_temperature's clock goes back an hour at line 10151; the second reading of each time is kept.
  const [temp] = convertNab(NAB, out, { match: 'machine_temperature' });
  assert.equal([temp!.repeated.rows, temp!.repeated.firstLine, temp!.outOfOrder.rows], [12, 10151, 0]);
  const srcTemp = readFileSync(join(NAB, 'realKnownCause', 'machine_temperature_system_failure.csv'), 'utf8').split('\n');
  const later = srcTemp[10150]!.split(',');
  const written = new Map(readFileSync(temp!.file, 'utf8').split('\n').slice(1, -1).map((l) => l.split(',') as [string, string]));
  assert.is(Number(written.get(String(Date.parse(`${later[0]!.replace(' ', 'T')}Z`) / 1000))), Number(later[1]));
});

test('NAB converter: bad cells and timestamps name the file and line; a new earlier time is counted, not reordered silently', () => {
  const dir = join(tmp.dir, 'nab-bad');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'ec2_cpu_utilization_bad.csv');
  const cases: [string, RegExp][] = [
    ['0x10', /ec2_cpu_utilization_bad\.csv:3: value '0x10' is not decimal notation/],
    ['1e400', /:3: value '1e400' is beyond the float32 range/],
    ['NaN', /:3: value 'NaN' is not a finite number/],
    ['', /:3: value '' is empty/],
    ['1,000', /:3: expected 'YYYY-MM-DD HH:MM:SS,number', got 3 fields \(a thousands separator or decimal comma in the value\?\)/],
  ];
  for (const [cell, pattern] of cases) {
    writeFileSync(file, `timestamp,value\n2014-02-14 14:30:00,1\n2014-02-14 14:35:00,${cell}\n`);
    expectDataError(() => convertNab(file, join(tmp.dir, 'nab-bad-out')), pattern);
  }
  writeFileSync(file, 'timestamp,value\n2014-02-30 14:30:00,1\n');
  expectDataError(() => convertNab(file, join(tmp.dir, 'nab-bad-out')), /:2: timestamp '2014-02-30 14:30:00' is not a UTC time/);
  writeFileSync(file, 'timestamp,value\n2014-02-14 14:30:00,1\n2014-02-14 14:40:00,3\n2014-02-14 14:35:00,2\n');
  const [f] = convertNab(file, join(tmp.dir, 'nab-bad-out'));
  assert.equal([f!.outOfOrder.rows, f!.outOfOrder.firstLine, f!.repeated.rows], [1, 4, 0]);
  assert.match(readFileSync(f!.file, 'utf8'), /^timestamp,cpu\n1392388200,1\n1392388500,2\n1392388800,3\n$/);
  assert.throws(() => convertNab(dir, dir), /would overwrite the source/);
});

test.run();
