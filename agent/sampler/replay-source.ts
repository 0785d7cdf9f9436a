import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { parseDecimal } from '../../common/decimal.js';
import { IcosflError } from '../../common/errors.js';

/**
 * The replay mode's source (`[sampler] replay_file`): a CSV trace read instead of the collectors.
 *   header row     column names; the agent's metric names select columns, in sampler.metrics
 *                  order; any other column (`timestamp`, which the replay ignores) is not read
 *   data rows      as many cells as the header; a selected cell is a decimal number that float32
 *                  holds (common/decimal.ts, the parser simulate uses: no hex, NaN, inf or digit
 *                  separators), or empty (a missing sample: NaN in the ring); no quoting, blank
 *                  lines at the end ignored
 * Reading the file is separate from parsing it: parseReplayCsv is pure and tested on literal
 * strings. Every error names file:line. The worker (worker.ts) owns a ReplayCursor over the rows.
 */
export interface ReplayTable {
  file: string;
  /** Data rows. */
  rows: number;
  /** Values per row: one per selected metric. */
  channels: number;
  /** Row-major [rows × channels], in metric order; NaN where a cell was empty. */
  values: Float64Array;
}

/** A header longer than this is not a header (a binary file, or one without line breaks). */
const MAX_HEADER_BYTES = 64 * 1024;

function dataError(message: string, file: string, line: number, extra: Record<string, unknown> = {}): IcosflError {
  return new IcosflError('DATA_INVALID', `${file}:${line}: ${message}`, { details: { file, line, ...extra } });
}

/** Column names of a header line (BOM, surrounding spaces and a trailing \r removed). */
export function parseReplayHeader(line: string): string[] {
  return line.replace(/^\uFEFF/, '').replace(/\r$/, '').split(',').map((c) => c.trim());
}

/** The metrics that are not columns of `header`, in metric order. */
export function missingColumns(header: readonly string[], metrics: readonly string[]): string[] {
  return metrics.filter((m) => !header.includes(m));
}

/** Parses a replay CSV and selects `metrics`' columns. Throws DATA_INVALID naming file:line. */
export function parseReplayCsv(text: string, file: string, metrics: readonly string[]): ReplayTable {
  if (metrics.length === 0) throw new RangeError('parseReplayCsv: metrics must name at least one column');
  const lines = text.split('\n');
  while (lines.length > 0 && lines[lines.length - 1]!.replace(/\r$/, '') === '') lines.pop();
  if (lines.length === 0) throw dataError('empty file: expected a header row naming the columns', file, 1);
  const header = parseReplayHeader(lines[0]!);
  const missing = missingColumns(header, metrics);
  if (missing.length > 0) {
    throw dataError(`no column ${missing.map((m) => `'${m}'`).join(', ')} (columns: ${header.join(', ')})`, file, 1, { missing });
  }
  const index = metrics.map((m) => {
    if (header.indexOf(m) !== header.lastIndexOf(m)) throw dataError(`column '${m}' appears twice in the header`, file, 1);
    return header.indexOf(m);
  });
  const rows = lines.length - 1;
  if (rows === 0) throw dataError('no data rows after the header: nothing to replay', file, 2);
  const values = new Float64Array(rows * metrics.length);
  for (let r = 0; r < rows; r++) {
    const line = r + 2;
    const cells = lines[r + 1]!.replace(/\r$/, '').split(',');
    if (cells.length !== header.length) throw dataError(`expected ${header.length} cells (one per header column), got ${cells.length}`, file, line);
    for (let c = 0; c < index.length; c++) {
      const cell = cells[index[c]!]!.trim();
      if (cell === '') {
        values[r * metrics.length + c] = NaN;
        continue;
      }
      const parsed = parseDecimal(cell, 'float32');
      if (!parsed.ok) throw dataError(`column '${metrics[c]}': '${cell}' ${parsed.reason} (an empty cell is a missing sample)`, file, line, { column: metrics[c] });
      values[r * metrics.length + c] = parsed.value;
    }
  }
  return { file, rows, channels: metrics.length, values };
}

function readError(file: string, cause: unknown): IcosflError {
  const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
  return new IcosflError('DATA_INVALID', `cannot read the replay file ${file} (${code})`, { cause, details: { file } });
}

/** Reads and parses a whole replay file. */
export function readReplayFile(file: string, metrics: readonly string[]): ReplayTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw readError(file, cause);
  }
  return parseReplayCsv(text, file, metrics);
}

/** The header's column names, reading no further than its line (config validation, load.ts). */
export function readReplayHeader(file: string): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (cause) {
    throw readError(file, cause);
  }
  try {
    const buf = Buffer.alloc(MAX_HEADER_BYTES);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      const nl = buf.subarray(got, got + n).indexOf(0x0a);
      if (nl >= 0) return parseReplayHeader(buf.subarray(0, got + nl).toString('utf8'));
      got += n;
      if (n === 0) {
        if (got === 0) throw dataError('empty file: expected a header row naming the columns', file, 1);
        return parseReplayHeader(buf.subarray(0, got).toString('utf8'));
      }
      if (got === buf.length) throw dataError(`no line break in the first ${MAX_HEADER_BYTES} bytes: not a CSV header`, file, 1);
    }
  } catch (err) {
    throw err instanceof IcosflError ? err : readError(file, err);
  } finally {
    closeSync(fd);
  }
}

/** Reads a table's rows in order, once: no looping at the end. */
export class ReplayCursor {
  private next_ = 0;

  constructor(private readonly table: ReplayTable) {}

  get rows(): number {
    return this.table.rows;
  }

  /** Rows handed out so far. */
  get position(): number {
    return this.next_;
  }

  get remaining(): number {
    return this.table.rows - this.next_;
  }

  get done(): boolean {
    return this.next_ >= this.table.rows;
  }

  /** The next row as a fresh array (the worker transfers its buffer), or null at the end. */
  next(): Float64Array<ArrayBuffer> | null {
    if (this.done) return null;
    const c = this.table.channels;
    const row = this.table.values.slice(this.next_ * c, (this.next_ + 1) * c);
    this.next_++;
    return row;
  }

  /** The next min(n, remaining) rows, row-major in a fresh array. */
  take(n: number): { rows: number; values: Float64Array<ArrayBuffer> } {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`ReplayCursor.take: n must be a non-negative integer, got ${String(n)}`);
    const k = Math.min(n, this.remaining);
    const c = this.table.channels;
    const values = this.table.values.slice(this.next_ * c, (this.next_ + k) * c);
    this.next_ += k;
    return { rows: k, values };
  }
}

/**
 * Rows of a table that go into the ring at start: the first `fraction` of them (floored), at
 * least one when the fraction is above 0, so `replay_history > 0` always gives the daemon a
 * first sample even while the stream is held.
 */
export function historyRows(rows: number, fraction: number): number {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`historyRows: fraction must be in [0, 1], got ${String(fraction)}`);
  if (fraction === 0 || rows === 0) return 0;
  // The epsilon keeps 0.29 × 100 (28.999…96 in binary) at 29.
  return Math.min(rows, Math.max(1, Math.floor(rows * fraction + 1e-9)));
}
