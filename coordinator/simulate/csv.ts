import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { IcosflError } from '../../common/errors.js';

/**
 * The simulation's input format: a directory with one CSV file per machine (= one federated
 * client). Each file has a header row with a `timestamp` column (unix seconds) and one numeric
 * column per metric; the metrics a run asks for must all be present, other columns are ignored.
 * Rows are in time order. An empty cell is a missing sample (NaN): windows that touch it are
 * skipped, exactly like gaps in the agent's ring.
 *
 *   timestamp,cpu,mem
 *   1304233200,12.5,30.1
 */
export interface ClientSeries {
  name: string;
  timestamps: Float64Array;
  /** [samples × metrics] row-major, in the order of the requested metrics. */
  values: Float32Array;
  metrics: string[];
}

function fail(file: string, line: number, what: string): never {
  throw new IcosflError('DATA_INVALID', `${file}:${line}: ${what}`, { details: { file, line } });
}

/** Pure parser (tested on literal strings); `file` only names the source in errors. */
export function parseClientCsv(text: string, file: string, metrics: readonly string[]): ClientSeries {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) fail(file, 1, 'empty file; expected a header row with a timestamp column');
  const header = lines[0]!.split(',').map((h) => h.trim());
  const tsCol = header.indexOf('timestamp');
  if (tsCol < 0) fail(file, 1, `header has no 'timestamp' column (columns: ${header.join(', ')})`);
  const cols = metrics.map((m) => {
    const i = header.indexOf(m);
    if (i < 0) fail(file, 1, `header has no '${m}' column (columns: ${header.join(', ')})`);
    return i;
  });
  const rows = lines.length - 1;
  const timestamps = new Float64Array(rows);
  const values = new Float32Array(rows * metrics.length);
  let previous = -Infinity;
  for (let r = 0; r < rows; r++) {
    const lineNo = r + 2;
    const cells = lines[r + 1]!.split(',');
    if (cells.length !== header.length) fail(file, lineNo, `${cells.length} fields, the header has ${header.length}`);
    const ts = Number(cells[tsCol]);
    if (cells[tsCol]!.trim() === '' || !Number.isFinite(ts)) fail(file, lineNo, `timestamp '${cells[tsCol]}' is not a number of unix seconds`);
    if (ts < previous) fail(file, lineNo, `timestamp ${ts} is earlier than the previous row's ${previous}`);
    previous = ts;
    timestamps[r] = ts;
    for (const [m, c] of cols.entries()) {
      const cell = cells[c]!.trim();
      const v = cell === '' ? NaN : Number(cell);
      if (cell !== '' && !Number.isFinite(v)) fail(file, lineNo, `${metrics[m]} value '${cell}' is not a number`);
      values[r * metrics.length + m] = v;
    }
  }
  return { name: basename(file).replace(/\.csv$/i, ''), timestamps, values, metrics: [...metrics] };
}

/** Every `*.csv` in `dir`, sorted by name; `limit` keeps the first ones. */
export function readClientDir(dir: string, metrics: readonly string[], limit = Infinity): ClientSeries[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.csv')).sort();
  } catch (cause) {
    throw new IcosflError('DATA_INVALID', `cannot read data directory ${dir}`, { cause });
  }
  if (names.length === 0) throw new IcosflError('DATA_INVALID', `no .csv files in ${dir}`);
  return names.slice(0, limit).map((n) => {
    const path = join(dir, n);
    return parseClientCsv(readFileSync(path, 'utf8'), path, metrics);
  });
}
