/**
 * The last `capacity` wake-up delays (actual − scheduled, ms) in a fixed circular buffer, with
 * quantiles computed only when asked (status requests, scrapes): recording costs one store.
 */
export interface JitterSummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export class JitterWindow {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(capacity = 3600) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`JitterWindow: capacity must be a positive integer, got ${capacity}`);
    this.values = new Float64Array(capacity);
  }

  record(ms: number): void {
    this.values[this.next] = ms;
    this.next = (this.next + 1) % this.values.length;
    this.filled = Math.min(this.filled + 1, this.values.length);
  }

  /** Nearest-rank quantiles over the window; NaN when nothing was recorded yet. */
  summary(): JitterSummary {
    if (this.filled === 0) return { n: 0, p50: NaN, p99: NaN, max: NaN };
    const sorted = this.values.slice(0, this.filled).sort();
    const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
    return { n: this.filled, p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1]! };
  }
}
