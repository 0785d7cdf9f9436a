import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convertNab } from '../../../simulate/convert.js';
import { parseClientCsv, readClientCsv } from '../../../simulate/csv.js';
import { parseResampleFlag, resampleRows, resampleSeries } from '../../../simulate/resample.js';
import { SHARED_DATA, tempDir } from '../../helpers/paths.js';

const tmp = tempDir('icosfl-resample-');
test.after(() => tmp.cleanup());
const nulls = (a: ArrayLike<number>) => Array.from(a, (v) => (Number.isNaN(v) ? null : v));

test('bins of SECONDS from the first timestamp; last sample per channel wins; an empty bin stays missing', () => {
  // 100 s start, 60 s bins: 100,130 → bin 0; 190 → 1; 250,260 → 2; 700,710 → 10; bins 3–9 empty.
  const ts = Float64Array.from([100, 130, 190, 250, 260, 700, 710]);
  const values = Float32Array.from([1, 10, 2, NaN, 3, 30, 4, 40, 5, NaN, 6, 60, 7, NaN]);
  const r = resampleRows(ts, values, 2, 60, 'fixture.csv');
  assert.equal(Array.from(r.timestamps), Array.from({ length: 11 }, (_, k) => 100 + 60 * k));
  assert.ok(r.values instanceof Float32Array);
  // Bin 0: cpu 2 (the later row), mem 10 (the later row's cell is empty, so it is no sample).
  assert.equal(nulls(r.values), [2, 10, 3, 30, 5, 40, ...new Array(14).fill(null), 7, 60]);
  assert.equal(r.stats, { rows: 7, bins: 11, emptyBins: 7, merged: 3 });
});

test('a timestamp on a bin edge in floating point stays in its bin; float64 rows stay float64', () => {
  const r = resampleRows(Float64Array.from([0, 0.1, 0.2, 0.1 + 0.2]), Float64Array.from([1, 2, 3, 4]), 1, 0.1, 'edge.csv');
  assert.equal(Array.from(r.values), [1, 2, 3, 4]);
  assert.ok(r.values instanceof Float64Array);
  assert.equal(r.stats.emptyBins, 0);
});

test('SECONDS far below the sampling interval is refused, naming the file and its median interval', () => {
  const s = parseClientCsv('timestamp,cpu\n0,1\n300,2\n600,3\n86400,4\n', 'day.csv', ['cpu']);
  assert.throws(() => resampleSeries(s, 1), /^--resample 1: day\.csv has 4 rows over 86400 s, which would be 86401 bins, nearly all empty; pick SECONDS near its sampling interval \(median 300 s\)/);
  const kept = resampleSeries(s, 300);
  assert.is(kept.series.name, 'day');
  assert.is(kept.stats.bins, 289);
  assert.is(kept.stats.emptyBins, 289 - 4);
});

test('--resample takes a positive decimal number of seconds', () => {
  assert.is(parseResampleFlag(undefined), undefined);
  assert.is(parseResampleFlag('300'), 300);
  assert.is(parseResampleFlag('0.5'), 0.5);
  for (const bad of ['0', '-60', '0x10', '', 'five', '1e400', 'NaN']) assert.throws(() => parseResampleFlag(bad), /--resample must be a positive number of seconds/, bad);
});

test('real NAB trace with 60 s, 240 s and hour-long steps and repeated stamps: on a 300 s grid, each bin the last source row', () => {
  const name = 'ec2_disk_write_bytes_1ef3de';
  const [f] = convertNab(join(SHARED_DATA, 'nab-server-metrics'), join(tmp.dir, 'nab'), { match: name, resampleSeconds: 300 });
  const out = readClientCsv(f!.file, ['disk_write_bytes']);
  // The oracle, from the source text: bin of each row (the later row wins), over the source's span.
  const rows = readFileSync(join(SHARED_DATA, 'nab-server-metrics', 'realAWSCloudwatch', `${name}.csv`), 'utf8').trim().split('\n').slice(1);
  const parsed = rows.map((l) => [Date.parse(`${l.split(',')[0]!.replace(' ', 'T')}Z`) / 1000, Number(l.split(',')[1])] as const);
  const t0 = Math.min(...parsed.map(([t]) => t));
  const last = new Map<number, number>();
  for (const [t, v] of [...parsed].sort((a, b) => a[0] - b[0])) last.set(Math.floor((t - t0) / 300), v);
  const bins = Math.floor((Math.max(...parsed.map(([t]) => t)) - t0) / 300) + 1;
  assert.is(out.timestamps.length, bins);
  assert.ok(out.timestamps.every((t, k) => t === t0 + 300 * k), 'every row on the grid');
  assert.equal(nulls(out.values), Array.from({ length: bins }, (_, k) => (last.has(k) ? Math.fround(last.get(k)!) : null)));
  assert.is(f!.resample!.emptyBins, bins - last.size);
  assert.is(f!.resample!.merged, f!.resample!.rows - last.size);
  assert.ok(f!.resample!.emptyBins > 0 && f!.repeated.rows > 0, 'the trace has an hour-long hole and repeated stamps');
  assert.is(out.emptyCells, f!.resample!.emptyBins);
});

test.run();
