import { parseDecimal } from '../common/decimal.js';
import type { ClientSeries } from './csv.js';

/**
 * `--resample SECONDS` (convert and run): an irregularly sampled trace put on a regular grid,
 * because a window is L + H consecutive samples and markGaps breaks windows at every interval
 * longer than 1.5 median steps, which on a 10–400 s trace leaves none. The policy
 * (docs/decisions.md D6):
 * - bins of SECONDS aligned to the first timestamp: bin k is [t0 + k·S, t0 + (k+1)·S) and is
 *   written at t0 + k·S;
 * - in each bin and channel the last sample wins (the latest reading, as a gauge is sampled);
 *   an empty cell is no sample, so an earlier value in the same bin stands;
 * - a bin no sample fell in stays missing (NaN, an empty cell): windows across it are skipped,
 *   as they are across a missed sample in the agent's ring. Nothing is filled in.
 */
export interface ResampleStats {
  /** Rows read, bins written, bins no row fell in, rows that fell in a bin an earlier row had (merged: the later value wins). */
  rows: number;
  bins: number;
  emptyBins: number;
  merged: number;
}

/** A trace this much longer than its rows (bins per row) is being upsampled into mostly holes. */
const MAX_BINS_PER_ROW = 16;

/**
 * Rows (timestamps non-decreasing, `values` row-major [rows × channels]) on the grid above.
 * `name` names the trace in the error for a SECONDS far below its sampling interval.
 */
export function resampleRows<V extends Float32Array | Float64Array>(
  timestamps: Float64Array,
  values: V,
  channels: number,
  seconds: number,
  name: string,
): { timestamps: Float64Array; values: V; stats: ResampleStats } {
  if (!(Number.isFinite(seconds) && seconds > 0)) throw new RangeError(`--resample must be a positive number of seconds, got ${seconds}`);
  const rows = timestamps.length;
  const make = (n: number) => (values instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)) as V;
  if (rows === 0) return { timestamps: new Float64Array(0), values: make(0), stats: { rows: 0, bins: 0, emptyBins: 0, merged: 0 } };
  const t0 = timestamps[0]!;
  // The epsilon keeps a timestamp exactly on a bin edge (t0 + k·S in floating point) in bin k.
  const binOf = (t: number) => Math.floor((t - t0) / seconds + 1e-9);
  const bins = binOf(timestamps[rows - 1]!) + 1;
  if (bins > MAX_BINS_PER_ROW * rows + 1024) {
    const intervals = Array.from(timestamps.subarray(1), (t, i) => t - timestamps[i]!).sort((a, b) => a - b);
    const median = intervals[Math.floor(intervals.length / 2)] ?? 0;
    throw new RangeError(
      `--resample ${seconds}: ${name} has ${rows} rows over ${timestamps[rows - 1]! - t0} s, which would be ${bins} bins, nearly all empty; ` +
        `pick SECONDS near its sampling interval (median ${median} s)`,
    );
  }
  const out = make(bins * channels);
  out.fill(NaN);
  const filled = new Uint8Array(bins);
  let merged = 0;
  let previousBin = -1;
  for (let r = 0; r < rows; r++) {
    const b = binOf(timestamps[r]!);
    if (b < previousBin) throw new RangeError(`resampleRows: ${name}: timestamps must be in time order (row ${r})`);
    if (b === previousBin) merged++;
    previousBin = b;
    filled[b] = 1;
    for (let c = 0; c < channels; c++) {
      const v = values[r * channels + c]!;
      if (!Number.isNaN(v)) out[b * channels + c] = v;
    }
  }
  const grid = Float64Array.from({ length: bins }, (_, k) => t0 + k * seconds);
  const emptyBins = bins - filled.reduce((a, f) => a + f, 0);
  return { timestamps: grid, values: out, stats: { rows, bins, emptyBins, merged } };
}

/** A parsed client series on the grid (its empty-cell count kept: it describes the file). */
export function resampleSeries(series: ClientSeries, seconds: number): { series: ClientSeries; stats: ResampleStats } {
  const r = resampleRows(series.timestamps, series.values, series.metrics.length, seconds, `${series.name}.csv`);
  return { series: { ...series, timestamps: r.timestamps, values: r.values }, stats: r.stats };
}

/** The value of a `--resample SECONDS` flag (undefined when absent): a positive decimal number. */
export function parseResampleFlag(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = parseDecimal(raw, 'float64');
  if (!v.ok || !(v.value > 0)) throw new RangeError(`--resample must be a positive number of seconds, got '${raw}'`);
  return v.value;
}
