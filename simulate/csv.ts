import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseDecimal } from '../common/decimal.js';
import { IcosflError } from '../common/errors.js';

/**
 * The simulation's input format: a directory with one CSV file per machine (= one federated
 * client). Each file has a header row with a `timestamp` column (unix seconds) and one numeric
 * column per metric; the metrics a run asks for must all be present, other columns are ignored.
 * Rows are in strictly increasing time order (a repeated timestamp is an error: which row would
 * be the sample?). Cells are plain decimals (common/decimal.ts: no hex, NaN, inf, separators,
 * nothing float32 cannot hold). An empty metric cell is a missing sample (NaN), counted in
 * `emptyCells`: windows that touch it are skipped, exactly like gaps in the agent's ring; so are
 * the samples that skipped timestamps leave out (markGaps, applied by the simulation).
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
  /** Metric cells that were empty in the file (read as missing samples). */
  emptyCells?: number;
}

function fail(file: string, line: number, what: string): never {
  throw new IcosflError('DATA_INVALID', `${file}:${line}: ${what}`, { details: { file, line } });
}

/** Pure parser (tested on literal strings); `file` only names the source in errors. */
export function parseClientCsv(text: string, file: string, metrics: readonly string[]): ClientSeries {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) fail(file, 1, 'empty file; expected a header row with a timestamp column');
  const header = lines[0]!.replace(/^\uFEFF/, '').split(',').map((h) => h.trim());
  // A column named twice would leave it to chance which one is read.
  const column = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) fail(file, 1, `header has no '${name}' column (columns: ${header.join(', ')})`);
    if (header.lastIndexOf(name) !== i) fail(file, 1, `header names '${name}' twice (columns ${i + 1} and ${header.lastIndexOf(name) + 1})`);
    return i;
  };
  const tsCol = column('timestamp');
  const cols = metrics.map(column);
  const rows = lines.length - 1;
  const timestamps = new Float64Array(rows);
  const values = new Float32Array(rows * metrics.length);
  let emptyCells = 0;
  for (let r = 0; r < rows; r++) {
    const lineNo = r + 2;
    const cells = lines[r + 1]!.split(',');
    if (cells.length !== header.length) {
      const hint = cells.length > header.length ? ' (a thousands separator, decimal comma or quoted comma in a cell?)' : '';
      fail(file, lineNo, `${cells.length} fields, the header has ${header.length}${hint}`);
    }
    const stamp = parseDecimal(cells[tsCol]!, 'float64');
    if (!stamp.ok) fail(file, lineNo, `timestamp '${cells[tsCol]!.trim()}' ${stamp.reason}; expected unix seconds`);
    const ts = stamp.value;
    if (r > 0 && ts <= timestamps[r - 1]!) {
      const what = ts === timestamps[r - 1] ? `repeats line ${lineNo - 1}'s timestamp` : `is earlier than line ${lineNo - 1}'s ${timestamps[r - 1]}`;
      fail(file, lineNo, `timestamp ${ts} ${what}; rows must be in strictly increasing time order, one sample each`);
    }
    timestamps[r] = ts;
    for (const [m, c] of cols.entries()) {
      const cell = cells[c]!;
      let v = NaN;
      if (cell.trim() === '') emptyCells++;
      else {
        const parsed = parseDecimal(cell, 'float32');
        if (!parsed.ok) fail(file, lineNo, `${metrics[m]} value '${cell.trim()}' ${parsed.reason} (an empty cell is a missing sample)`);
        v = parsed.value;
      }
      values[r * metrics.length + m] = v;
    }
  }
  return { name: basename(file).replace(/\.csv$/i, ''), timestamps, values, metrics: [...metrics], emptyCells };
}

/** The names of every `*.csv` in `dir`, sorted; an unreadable directory or none is an error. */
export function clientFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.csv')).sort();
  } catch (cause) {
    throw new IcosflError('DATA_INVALID', `cannot read data directory ${dir}`, { cause });
  }
  if (names.length === 0) throw new IcosflError('DATA_INVALID', `no .csv files in ${dir}`);
  return names;
}

/** One client's CSV file, parsed. */
export function readClientCsv(path: string, metrics: readonly string[]): ClientSeries {
  return parseClientCsv(readFileSync(path, 'utf8'), path, metrics);
}

/** Every `*.csv` in `dir`, sorted by name; `limit` keeps the first ones. */
export function readClientDir(dir: string, metrics: readonly string[], limit = Infinity): ClientSeries[] {
  return clientFiles(dir).slice(0, limit).map((n) => readClientCsv(join(dir, n), metrics));
}

/**
 * The series with a missing sample (NaN row) for each sampling step its timestamps skip, so that
 * no window joins the samples on either side of a hole in the trace as if they were neighbours
 * (the agent's ring records a missed sample the same way). The step is the median interval
 * between rows; an interval longer than 1.5 steps is a gap of round(interval / step) − 1 missing
 * samples, of which at most `maxMissing` are inserted: one already stops every window across the
 * gap, and the cap keeps a month-long hole in a 1-second trace from costing memory. Shorter,
 * off-grid intervals stay as they are. Found on NAB's EC2 traces: ec2_cpu_utilization_ac20cd
 * skips 2 and 3 samples, 825cc2 one sample twice.
 */
export interface MarkedGaps {
  series: ClientSeries;
  /** Intervals longer than 1.5 steps, and the missing samples inserted for them. */
  gaps: number;
  missing: number;
  /** The sampling step (median interval) and the longest interval, in seconds (0 without rows). */
  step: number;
  largest: number;
}

export function markGaps(series: ClientSeries, maxMissing: number): MarkedGaps {
  if (!(Number.isInteger(maxMissing) && maxMissing >= 1)) throw new RangeError(`markGaps: maxMissing must be an integer ≥ 1, got ${maxMissing}`);
  const { timestamps: ts, values, metrics } = series;
  const C = metrics.length;
  const intervals = Array.from(ts.subarray(1), (t, i) => t - ts[i]!).sort((a, b) => a - b);
  const step = intervals.length > 0 ? intervals[Math.floor(intervals.length / 2)]! : 0;
  const largest = intervals.length > 0 ? intervals[intervals.length - 1]! : 0;
  if (!(step > 0)) return { series, gaps: 0, missing: 0, step: 0, largest };
  const inserted = new Array<number>(ts.length).fill(0); // missing samples to insert before row r
  for (let r = 1; r < ts.length; r++) {
    const interval = ts[r]! - ts[r - 1]!;
    if (interval > 1.5 * step) inserted[r] = Math.min(Math.round(interval / step) - 1, maxMissing);
  }
  const gaps = inserted.filter((n) => n > 0).length;
  if (gaps === 0) return { series, gaps: 0, missing: 0, step, largest };
  const missing = inserted.reduce((a, n) => a + n, 0);
  const timestamps = new Float64Array(ts.length + missing);
  const filled = new Float32Array((ts.length + missing) * C).fill(NaN);
  let out = 0;
  for (let r = 0; r < ts.length; r++) {
    for (let k = 1; k <= inserted[r]!; k++) timestamps[out++] = ts[r - 1]! + k * step;
    timestamps[out] = ts[r]!;
    filled.set(values.subarray(r * C, (r + 1) * C), out * C);
    out++;
  }
  return { series: { ...series, timestamps, values: filled }, gaps, missing, step, largest };
}
