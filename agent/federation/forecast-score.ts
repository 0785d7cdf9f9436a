/**
 * How well this agent's live forecasts did: each forecast made (the next `horizon` samples of
 * every metric) is scored once those samples have arrived, against the actual values and against
 * persistence (the last value at the forecast's origin). What `status` and `npm start` report;
 * a bounded queue, so a daemon that forecasts for months does not grow.
 */
interface Pending {
  origin: number;
  forecast: Float32Array; // [horizon × channels]
  last: Float32Array; // [channels]
}

export interface MetricScore {
  count: number;
  rmse: number;
  mae: number;
  persistence_rmse: number;
  persistence_mae: number;
  rmse_by_step: number[];
}

export class ForecastScore {
  readonly #metrics: readonly string[];
  readonly #H: number;
  readonly #pending: Pending[] = [];
  readonly #max: number;
  #lastOrigin = -Infinity;
  // Sums per channel and step: model and persistence squared and absolute errors, counts.
  readonly #sq: Float64Array;
  readonly #ab: Float64Array;
  readonly #psq: Float64Array;
  readonly #pab: Float64Array;
  readonly #n: Float64Array;

  constructor(metrics: readonly string[], horizon: number, maxPending = 4096) {
    this.#metrics = metrics;
    this.#H = horizon;
    this.#max = maxPending;
    const size = metrics.length * horizon;
    this.#sq = new Float64Array(size);
    this.#ab = new Float64Array(size);
    this.#psq = new Float64Array(size);
    this.#pab = new Float64Array(size);
    this.#n = new Float64Array(size);
  }

  get metrics(): readonly string[] {
    return this.#metrics;
  }

  get horizon(): number {
    return this.#H;
  }

  record(origin: number, forecast: Float32Array, last: Float32Array): void {
    if (origin <= this.#lastOrigin) return;
    this.#lastOrigin = origin;
    this.#pending.push({ origin, forecast: forecast.slice(), last: last.slice() });
    if (this.#pending.length > this.#max) this.#pending.shift();
  }

  /** Scores every pending forecast whose samples are in (timestamps ascending, values [n × channels]). */
  settle(timestamps: Float64Array, values: Float32Array): void {
    const C = this.#metrics.length;
    const H = this.#H;
    while (this.#pending.length > 0) {
      const p = this.#pending[0]!;
      let first = 0;
      while (first < timestamps.length && timestamps[first]! <= p.origin) first++;
      // The origin's own sample must be in the window, so the next H samples are the ones forecast;
      // a forecast older than the window it is looked up in is dropped.
      if (first === 0 || timestamps[first - 1] !== p.origin) {
        if (timestamps.length > 0 && timestamps[0]! > p.origin) {
          this.#pending.shift();
          continue;
        }
        return;
      }
      if (timestamps.length - first < H) return;
      this.#pending.shift();
      for (let h = 0; h < H; h++) {
        for (let c = 0; c < C; c++) {
          const actual = values[(first + h) * C + c]!;
          if (!Number.isFinite(actual)) continue;
          const i = c * H + h;
          const e = p.forecast[h * C + c]! - actual;
          const pe = p.last[c]! - actual;
          this.#sq[i]! += e * e;
          this.#ab[i]! += Math.abs(e);
          this.#psq[i]! += pe * pe;
          this.#pab[i]! += Math.abs(pe);
          this.#n[i]!++;
        }
      }
    }
  }

  summary(): Record<string, MetricScore> {
    const H = this.#H;
    const out: Record<string, MetricScore> = {};
    for (const [c, name] of this.#metrics.entries()) {
      let n = 0, sq = 0, ab = 0, psq = 0, pab = 0;
      const byStep: number[] = [];
      for (let h = 0; h < H; h++) {
        const i = c * H + h;
        n += this.#n[i]!;
        sq += this.#sq[i]!;
        ab += this.#ab[i]!;
        psq += this.#psq[i]!;
        pab += this.#pab[i]!;
        byStep.push(this.#n[i]! > 0 ? Math.sqrt(this.#sq[i]! / this.#n[i]!) : NaN);
      }
      out[name] = { count: n / H, rmse: Math.sqrt(sq / n), mae: ab / n, persistence_rmse: Math.sqrt(psq / n), persistence_mae: pab / n, rmse_by_step: byStep };
    }
    return out;
  }
}
