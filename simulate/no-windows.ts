import { IcosflError } from '../common/errors.js';
import type { ClientSeries, MarkedGaps } from './csv.js';

/**
 * The error when no client has enough windows, saying why: a window is lookback + horizon
 * consecutive samples, so a trace long enough can still have none when gaps (skipped
 * timestamps, empty cells, empty --resample bins) break it every few samples, which is what an
 * irregularly sampled trace looks like to markGaps. `enoughWithoutGaps` says whether a series
 * with its missing samples dropped would have enough windows: then the gaps are the cause.
 */
export function noWindowsError(
  skipped: { raw: ClientSeries; marked: MarkedGaps }[],
  enoughWithoutGaps: (s: ClientSeries) => boolean,
  window: { lookback: number; horizon: number },
  resampleSeconds?: number,
): IcosflError {
  const need = `lookback ${window.lookback} + horizon ${window.horizon}`;
  const rows = skipped.map((s) => s.raw.timestamps.length);
  const gappy = skipped.filter((s) => enoughWithoutGaps(compact(s.raw)));
  if (gappy.length === 0) {
    const [lo, hi] = [Math.min(...rows), Math.max(...rows)];
    const have = `${skipped.length === 1 ? 'the file has' : `the ${skipped.length} files have`} ${lo === hi ? lo : `${lo}–${hi}`} rows`;
    return new IcosflError('DATA_INVALID', `no client has enough samples for ${need}: ${have}; longer traces or a smaller --lookback/--horizon`, {
      details: { cause: 'too-short' },
    });
  }
  const gaps = gappy.reduce((a, s) => a + s.marked.gaps, 0);
  const widest = gappy.reduce((w, s) => (s.marked.largest > w.marked.largest ? s : w));
  const missing = gappy.reduce((a, s) => a + missingRows(s.raw), 0);
  const parts = [];
  if (gaps > 0) parts.push(`${gaps} gaps in the timestamps (intervals over 1.5 × the median step; the largest ${widest.marked.largest} s, in ${widest.raw.name}.csv, whose median step is ${widest.marked.step} s)`);
  if (missing > 0) parts.push(`${missing} missing samples (${resampleSeconds === undefined ? 'empty cells' : `empty cells or empty ${resampleSeconds} s bins`})`);
  const hint =
    resampleSeconds === undefined
      ? `--resample SECONDS puts irregularly sampled traces on a regular grid (e.g. --resample ${suggestedSeconds(gappy.map((s) => s.raw))})`
      : `a larger --resample than ${resampleSeconds} s leaves fewer bins empty`;
  return new IcosflError(
    'DATA_INVALID',
    `no client has enough windows for ${need}: ${gappy.length} of ${skipped.length} files would have enough samples, but a window cannot span a gap and they have ${parts.join(' and ')}; ${hint}`,
    { details: { cause: 'gaps', gaps, largestGapSeconds: widest.marked.largest, missingSamples: missing } },
  );
}

function missingRows(s: ClientSeries): number {
  const C = s.metrics.length;
  let n = 0;
  for (let r = 0; r < s.timestamps.length; r++) if (!s.values.subarray(r * C, (r + 1) * C).every(Number.isFinite)) n++;
  return n;
}

/** The series without its rows that have a missing sample, as if the samples had been consecutive. */
function compact(s: ClientSeries): ClientSeries {
  const C = s.metrics.length;
  const keep = Array.from({ length: s.timestamps.length }, (_, r) => r).filter((r) => s.values.subarray(r * C, (r + 1) * C).every(Number.isFinite));
  const values = new Float32Array(keep.length * C);
  keep.forEach((r, i) => values.set(s.values.subarray(r * C, (r + 1) * C), i * C));
  return { ...s, timestamps: Float64Array.from(keep, (r) => s.timestamps[r]!), values };
}

/** The 90th percentile of the intervals between rows, rounded up: few bins that wide are empty. */
function suggestedSeconds(series: ClientSeries[]): number {
  const intervals = series.flatMap((s) => Array.from(s.timestamps.subarray(1), (t, i) => t - s.timestamps[i]!)).sort((a, b) => a - b);
  return Math.max(1, Math.ceil(intervals[Math.floor(0.9 * (intervals.length - 1))] ?? 1));
}
