/**
 * The obvious TypeScript model of MetricRing, for the property test: every pushed sample kept in
 * an array, the window being the last `capacity` of them, and every query recomputed from
 * scratch. Deliberately a different algorithm from the native one (no slots, no blocks, no prefix
 * counts), so agreeing with it means something.
 */
export interface RefSample {
  ts: number;
  values: number[]; // float32-rounded; NaN for missing
}

/** What the ring stores for a number: its float32 value, or NaN when that is not finite. */
export function stored(v: number): number {
  const f = Math.fround(v);
  return Number.isFinite(f) ? f : NaN;
}

export class ReferenceRing {
  private samples: RefSample[] = [];

  constructor(
    readonly capacity: number,
    readonly channels: number,
  ) {}

  push(ts: number, values: ArrayLike<number>): void {
    this.samples.push({ ts, values: Array.from(values, stored) });
    if (this.samples.length > this.capacity) this.samples.shift();
  }

  get size(): number {
    return this.samples.length;
  }

  window(): RefSample[] {
    return this.samples;
  }

  latest(n: number): RefSample[] {
    return n === 0 ? [] : this.samples.slice(-n);
  }

  range(from: number, to: number): RefSample[] {
    return this.samples.filter((s) => s.ts >= from && s.ts <= to);
  }

  stats(): { count: number[]; mean: number[]; std: number[]; min: number[]; max: number[] } {
    const out = { count: [] as number[], mean: [] as number[], std: [] as number[], min: [] as number[], max: [] as number[] };
    for (let c = 0; c < this.channels; c++) {
      const xs = this.samples.map((s) => s.values[c]!).filter((x) => !Number.isNaN(x));
      const n = xs.length;
      const mean = n ? xs.reduce((a, b) => a + b, 0) / n : NaN;
      out.count.push(n);
      out.mean.push(mean);
      out.std.push(n ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n) : NaN);
      out.min.push(n ? Math.min(...xs) : NaN);
      out.max.push(n ? Math.max(...xs) : NaN);
    }
    return out;
  }

  windows(lookback: number, horizon: number, stride: number): { x: number[]; y: number[]; n: number; skipped: number } {
    const x: number[] = [];
    const y: number[] = [];
    let n = 0;
    let skipped = 0;
    for (let start = 0; start + lookback + horizon <= this.samples.length; start += stride) {
      const span = this.samples.slice(start, start + lookback + horizon);
      if (span.some((s) => s.values.some(Number.isNaN))) {
        skipped++;
        continue;
      }
      for (const s of span.slice(0, lookback)) x.push(...s.values);
      for (const s of span.slice(lookback)) y.push(...s.values);
      n++;
    }
    return { x, y, n, skipped };
  }
}
