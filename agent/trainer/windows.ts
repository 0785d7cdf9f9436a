/**
 * Sliding windows over a multichannel series, in the exact layout of the native ring's
 * `MetricRing.windows()` (docs/ARCHITECTURE.md), so the trainer does not care where they came
 * from: x is [n × lookback × channels], y is [n × horizon × channels], row-major, oldest first.
 * The TS builder exists for CSV traces (simulation, tests); the daemon gets its windows from the
 * ring without a copy.
 */
import type { WindowSet } from '../../native/ring.js';

export type { WindowSet };

/** Windows with any NaN/Inf are skipped and counted, like the ring does. */
export function buildWindows(values: Float32Array, channels: number, lookback: number, horizon: number, stride = 1): WindowSet {
  const starts = windowStarts(values, channels, lookback, horizon, stride);
  const xw = lookback * channels;
  const yw = horizon * channels;
  const n = starts.length;
  const x = new Float32Array(n * xw);
  const y = new Float32Array(n * yw);
  for (const [w, start] of starts.entries()) {
    const window = values.subarray(start * channels, (start + lookback + horizon) * channels);
    x.set(window.subarray(0, xw), w * xw);
    y.set(window.subarray(xw), w * yw);
  }
  return { x, y, n, lookback, horizon, channels, skipped: candidateCount(values.length / channels, lookback + horizon, stride) - n };
}

/**
 * The first sample of each window buildWindows keeps, in order. Window w's origin (its last input)
 * is starts[w] + lookback − 1 and its targets end at starts[w] + lookback + horizon − 1, which is
 * how a forecast tells which earlier windows' targets it could have seen (mixRecent).
 */
export function windowStarts(values: Float32Array, channels: number, lookback: number, horizon: number, stride = 1): Int32Array {
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
  if (!Number.isInteger(lookback) || lookback < 1) throw new RangeError(`lookback must be a positive integer, got ${lookback}`);
  if (!Number.isInteger(horizon) || horizon < 1) throw new RangeError(`horizon must be a positive integer, got ${horizon}`);
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`stride must be a positive integer, got ${stride}`);
  if (values.length % channels !== 0) throw new RangeError(`values length ${values.length} is not a multiple of channels ${channels}`);
  const span = lookback + horizon;
  const candidates = candidateCount(values.length / channels, span, stride);
  const starts = new Int32Array(candidates);
  let n = 0;
  for (let w = 0; w < candidates; w++) {
    const start = w * stride;
    if (values.subarray(start * channels, (start + span) * channels).every(Number.isFinite)) starts[n++] = start;
  }
  return starts.subarray(0, n);
}

/** How many windows of `span` samples, `stride` apart, fit in `samples`, gaps or not. */
function candidateCount(samples: number, span: number, stride: number): number {
  return samples >= span ? Math.floor((samples - span) / stride) + 1 : 0;
}

/**
 * For windows with these starts (windowStarts, one lookback and horizon): how many of them had
 * all their targets known at each one's origin. Window j's are known at window t's when they end by
 * it, starts[j] + horizon <= starts[t]; windows being in time order, those are a prefix.
 */
export function knownTargetCounts(starts: Int32Array, horizon: number): Int32Array {
  const known = new Int32Array(starts.length);
  for (let t = 0, j = 0; t < starts.length; t++) {
    while (starts[j]! + horizon <= starts[t]!) j++;
    known[t] = j;
  }
  return known;
}

/** Windows [from, to) as views (no copy). */
export function sliceWindows(ws: WindowSet, from: number, to: number): WindowSet {
  const a = Math.max(0, Math.min(from, ws.n));
  const b = Math.max(a, Math.min(to, ws.n));
  const xw = ws.lookback * ws.channels;
  const yw = ws.horizon * ws.channels;
  return { ...ws, x: ws.x.subarray(a * xw, b * xw), y: ws.y.subarray(a * yw, b * yw), n: b - a, skipped: 0 };
}

/** Concatenates window sets of one layout (centralised training pools every client's windows). */
export function concatWindows(sets: WindowSet[]): WindowSet {
  if (sets.length === 0) throw new RangeError('concatWindows needs at least one window set');
  const { lookback, horizon, channels } = sets[0]!;
  for (const s of sets) {
    if (s.lookback !== lookback || s.horizon !== horizon || s.channels !== channels) {
      throw new RangeError('concatWindows: window sets differ in lookback, horizon or channels');
    }
  }
  const n = sets.reduce((a, s) => a + s.n, 0);
  const x = new Float32Array(n * lookback * channels);
  const y = new Float32Array(n * horizon * channels);
  let xo = 0;
  let yo = 0;
  for (const s of sets) {
    x.set(s.x, xo);
    y.set(s.y, yo);
    xo += s.x.length;
    yo += s.y.length;
  }
  return { x, y, n, lookback, horizon, channels, skipped: sets.reduce((a, s) => a + s.skipped, 0) };
}

/** Windows [start, start+n) in time order: the first (1 − fraction) trains, the tail validates. */
export function chronologicalSplit(ws: WindowSet, validationFraction: number): { train: WindowSet; validation: WindowSet } {
  // Drop the windows at the boundary whose targets reach into the first validation window
  // (window w's targets end at sample w + L + H − 1): no validation value is ever a training value.
  const nVal = Math.max(1, Math.round(ws.n * validationFraction));
  const cut = ws.n - nVal;
  return { train: sliceWindows(ws, 0, Math.max(0, cut - ws.lookback - ws.horizon + 1)), validation: sliceWindows(ws, cut, ws.n) };
}
