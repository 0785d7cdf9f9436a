import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseDecimal } from '../common/decimal.js';
import { IcosflError } from '../common/errors.js';
import { nabKindOf } from './nab-kinds.js';
import { resampleRows, type ResampleStats } from './resample.js';
import { tarEntries } from './tar.js';

/**
 * Converters from the layouts in ../shared/data/ to the simulation's CSV format (csv.ts).
 * Every number goes through the one strict parser (common/decimal.ts); a bad cell is an error
 * naming the file and line.
 * - GCD (Google cluster trace 2011, GCD_VMs.tar.gz): files of "cpu mem" lines, no header, no
 *   timestamps, one line per 300 s. Timestamps are synthesised from 2011-05-01 00:00 UTC (the
 *   trace's first days) so the files are valid input; only their spacing matters.
 * - NAB (`timestamp,value`, "YYYY-MM-DD HH:MM:SS" UTC): univariate, written under the column its
 *   kind names (nab-kinds.ts: cpu, network_in, …), or `metric` for all. NAB itself repeats
 *   timestamps (11 rows in each of three files; machine_temperature's clock goes back an hour
 *   once), so rows whose timestamp is not later than the previous row's are counted and reported
 *   (ConvertedFile.repeated / outOfOrder), the later row of a timestamp kept, the output sorted.
 * With `resampleSeconds`, each file is put on that grid (resample.ts) before it is written.
 */
const GCD_START_S = Date.UTC(2011, 4, 1) / 1000;
const GCD_STEP_S = 300;

export interface ConvertedFile {
  /** The file written, and what it was made from (a path, or archive:entry). */
  file: string;
  source: string;
  /** The metric columns written (a NAB file's kind, or cpu,mem). */
  columns: string[];
  /** Data rows read, and rows written. */
  rows: number;
  written: number;
  /** NAB rows whose timestamp an earlier row had / that went back to a new earlier time; the first one's line. */
  repeated: { rows: number; firstLine: number };
  outOfOrder: { rows: number; firstLine: number };
  resample?: ResampleStats;
}

export interface ConvertOptions {
  /** Keep the first `limit` files (gcd: the archive's entries in name order). */
  limit?: number;
  resampleSeconds?: number;
}

function dataError(where: string, line: number, what: string): IcosflError {
  return new IcosflError('DATA_INVALID', `${where}:${line}: ${what}`, { details: { file: where, line } });
}

/** Non-blank lines with their 1-based line numbers; blank lines count only at the end. */
function numberedLines(text: string, where: string): { line: number; text: string }[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines.map((t, i) => {
    if (t.trim() === '') throw dataError(where, i + 1, 'empty line inside the file (a sample per line expected)');
    return { line: i + 1, text: t };
  });
}

/** The simulation CSV text of rows on a time axis; a NaN value is an empty cell (a missing sample). */
function clientCsv(columns: string[], timestamps: Float64Array, values: Float64Array): string {
  const C = columns.length;
  const lines = [`timestamp,${columns.join(',')}`];
  for (let r = 0; r < timestamps.length; r++) {
    const cells = Array.from(values.subarray(r * C, (r + 1) * C), (v) => (Number.isNaN(v) ? '' : String(v)));
    lines.push(`${timestamps[r]},${cells.join(',')}`);
  }
  return lines.join('\n') + '\n';
}

function writeOutput(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (cause) {
    throw new IcosflError('OUTPUT_UNWRITABLE', `cannot write ${path} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}

function makeOutputDir(out: string): void {
  try {
    mkdirSync(out, { recursive: true });
  } catch (cause) {
    throw new IcosflError('OUTPUT_UNWRITABLE', `cannot create the output directory ${out} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}

/** Rows on the requested grid, or as they are. */
function onGrid(timestamps: Float64Array, values: Float64Array, channels: number, opts: ConvertOptions, name: string) {
  if (opts.resampleSeconds === undefined) return { timestamps, values, stats: undefined };
  return resampleRows(timestamps, values, channels, opts.resampleSeconds, name);
}

export function convertGcd(src: string, out: string, opts: ConvertOptions = {}): ConvertedFile[] {
  const limit = opts.limit ?? Infinity;
  let archive: Buffer;
  try {
    archive = readFileSync(src);
  } catch (cause) {
    throw new IcosflError('DATA_INVALID', `cannot read ${src} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
  const done: ConvertedFile[] = [];
  const texts: string[] = [];
  const entries = [...tarEntries(archive)].sort((a, b) => a.name.localeCompare(b.name));
  for (const { name, data } of entries) {
    if (done.length >= limit) break;
    const where = `${src}:${name}`;
    const rows = numberedLines(Buffer.from(data).toString('utf8'), where);
    const values = new Float64Array(rows.length * 2);
    for (const [i, { line, text }] of rows.entries()) {
      const cells = text.trim().split(/\s+/);
      if (cells.length !== 2) throw dataError(where, line, `expected two numbers (cpu mem) separated by spaces, got '${text}'`);
      for (const [c, cell] of cells.entries()) {
        const v = parseDecimal(cell, 'float32');
        if (!v.ok) throw dataError(where, line, `${c === 0 ? 'cpu' : 'mem'} value '${cell}' ${v.reason}`);
        values[i * 2 + c] = v.value;
      }
    }
    const timestamps = Float64Array.from(rows, (_, i) => GCD_START_S + i * GCD_STEP_S);
    const grid = onGrid(timestamps, values, 2, opts, where);
    const file = join(out, `${basename(name)}.csv`);
    texts.push(clientCsv(['cpu', 'mem'], grid.timestamps, grid.values));
    const none = { rows: 0, firstLine: 0 };
    done.push({ file, source: where, columns: ['cpu', 'mem'], rows: rows.length, written: grid.timestamps.length, repeated: none, outOfOrder: none, ...(grid.stats ? { resample: grid.stats } : {}) });
  }
  if (done.length === 0) throw new IcosflError('DATA_INVALID', `${src}: no files in the archive`);
  // Every entry is parsed before any is written, so a bad line leaves no half-converted directory.
  makeOutputDir(out);
  for (const [i, f] of done.entries()) writeOutput(f.file, texts[i]!);
  return done;
}

const NAB_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** Unix seconds of a NAB timestamp, or NaN unless it is a real "YYYY-MM-DD HH:MM:SS" time (no Feb 30, no 24:00). */
function nabTime(text: string): number {
  if (!NAB_TIME.test(text)) return NaN;
  const iso = `${text.replace(' ', 'T')}Z`;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso.replace('Z', '.000Z') ? ms / 1000 : NaN;
}

/** One NAB file, parsed: time-ordered unique timestamps (the later row of each kept) and what was merged. */
function parseNab(path: string): { timestamps: Float64Array; values: Float64Array; rows: number; repeated: ConvertedFile['repeated']; outOfOrder: ConvertedFile['outOfOrder'] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new IcosflError('DATA_INVALID', `cannot read ${path} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
  const [header, ...rows] = numberedLines(text, path);
  if (header?.text.trim() !== 'timestamp,value') throw dataError(path, 1, `expected the header 'timestamp,value', got '${header?.text ?? ''}'`);
  const byTime = new Map<number, number>();
  const repeated = { rows: 0, firstLine: 0 };
  const outOfOrder = { rows: 0, firstLine: 0 };
  let latest = -Infinity;
  for (const { line, text: row } of rows) {
    const cells = row.split(',');
    if (cells.length !== 2) {
      const hint = cells.length > 2 ? ' (a thousands separator or decimal comma in the value?)' : '';
      throw dataError(path, line, `expected 'YYYY-MM-DD HH:MM:SS,number', got ${cells.length} fields${hint}: '${row}'`);
    }
    const t = nabTime(cells[0]!.trim());
    if (!Number.isFinite(t)) throw dataError(path, line, `timestamp '${cells[0]!.trim()}' is not a UTC time 'YYYY-MM-DD HH:MM:SS'`);
    const v = parseDecimal(cells[1]!, 'float32');
    if (!v.ok) throw dataError(path, line, `value '${cells[1]!.trim()}' ${v.reason}`);
    if (byTime.has(t)) {
      if (repeated.rows++ === 0) repeated.firstLine = line;
    } else if (t < latest) {
      if (outOfOrder.rows++ === 0) outOfOrder.firstLine = line;
    }
    latest = Math.max(latest, t);
    byTime.set(t, v.value);
  }
  const times = [...byTime.keys()].sort((a, b) => a - b);
  return { timestamps: Float64Array.from(times), values: Float64Array.from(times, (t) => byTime.get(t)!), rows: rows.length, repeated, outOfOrder };
}

/** The NAB files under `src` (a file or a directory, recursively), sorted; `match` filters names by substring. */
export function nabFiles(src: string, match?: string): string[] {
  const files: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n));
    else if (p.endsWith('.csv') && (!match || basename(p).includes(match))) files.push(p);
  };
  try {
    walk(src);
  } catch (cause) {
    throw new IcosflError('DATA_INVALID', `cannot read ${src} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
  if (files.length === 0) throw new IcosflError('DATA_INVALID', `no NAB .csv files${match ? ` matching '${match}'` : ''} under ${src}`);
  return files;
}

/**
 * src: one NAB CSV or a directory searched recursively; `match` filters file names by substring,
 * `kind` keeps the files of one kind (nab-kinds.ts), `metric` names every file's column instead of its kind.
 */
export function convertNab(src: string, out: string, opts: ConvertOptions & { metric?: string; match?: string; kind?: string } = {}): ConvertedFile[] {
  let files = nabFiles(src, opts.match);
  if (opts.kind !== undefined) {
    const found = files.map(nabKindOf);
    files = files.filter((_, i) => found[i] === opts.kind);
    if (files.length === 0) {
      const counts = [...new Set(found)].map((k) => `${k} ${found.filter((f) => f === k).length}`).join(', ');
      throw new IcosflError('DATA_INVALID', `no NAB files of kind '${opts.kind}'${opts.match ? ` matching '${opts.match}'` : ''} under ${src} (kinds there: ${counts})`);
    }
  }
  files = files.slice(0, opts.limit ?? Infinity);
  // Two sources with one name would overwrite each other; a source in --out would be overwritten.
  const targets = new Map<string, string>();
  for (const f of files) {
    const target = resolve(out, basename(f));
    if (target === resolve(f)) throw new RangeError(`--out ${out}: writing there would overwrite the source ${f}; choose another directory`);
    const other = targets.get(target);
    if (other !== undefined) throw new RangeError(`${other} and ${f} would both be written as ${target}; narrow the sources with --match`);
    targets.set(target, f);
  }
  // Every file is parsed before any is written, so a bad cell leaves no half-converted directory.
  const converted = files.map((f) => {
    const column = opts.metric ?? nabKindOf(f);
    const nab = parseNab(f);
    const grid = onGrid(nab.timestamps, nab.values, 1, opts, f);
    const file = join(out, basename(f));
    const text = clientCsv([column], grid.timestamps, grid.values);
    const summary: ConvertedFile = { file, source: f, columns: [column], rows: nab.rows, written: grid.timestamps.length, repeated: nab.repeated, outOfOrder: nab.outOfOrder, ...(grid.stats ? { resample: grid.stats } : {}) };
    return { text, summary };
  });
  makeOutputDir(out);
  for (const { summary, text } of converted) writeOutput(summary.file, text);
  return converted.map((c) => c.summary);
}
