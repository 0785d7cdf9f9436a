import type { WindowSet } from './windows.js';

/** Forecast errors in original units, per channel, and per step ahead × channel. */
export interface ForecastErrors {
  /** Over every step ahead: [channel]. */
  rmse: number[];
  mae: number[];
  /** [step][channel], step 0 = one step ahead. */
  rmseByStep: number[][];
  maeByStep: number[][];
  count: number;
}

/** pred and the windows' y are both [n × horizon × channels]. */
export function forecastErrors(pred: Float32Array, ws: WindowSet): ForecastErrors {
  const { n, horizon: H, channels: C } = ws;
  if (pred.length !== ws.y.length) throw new RangeError(`forecastErrors: ${pred.length} predictions for ${ws.y.length} targets`);
  const sq = Array.from({ length: H }, () => new Float64Array(C));
  const ab = Array.from({ length: H }, () => new Float64Array(C));
  for (let w = 0; w < n; w++) {
    for (let h = 0; h < H; h++) {
      for (let c = 0; c < C; c++) {
        const i = (w * H + h) * C + c;
        const e = pred[i]! - ws.y[i]!;
        sq[h]![c]! += e * e;
        ab[h]![c]! += Math.abs(e);
      }
    }
  }
  const chan = (rows: Float64Array[], f: (s: number) => number) =>
    Array.from({ length: C }, (_, c) => f(rows.reduce((a, r) => a + r[c]!, 0) / (n * H)));
  return {
    rmse: chan(sq, Math.sqrt),
    mae: chan(ab, (x) => x),
    rmseByStep: sq.map((r) => Array.from(r, (s) => Math.sqrt(s / n))),
    maeByStep: ab.map((r) => Array.from(r, (s) => s / n)),
    count: n,
  };
}

/** The persistence baseline: every step ahead repeats the last observed value. */
export function persistenceForecast(ws: WindowSet): Float32Array {
  const { n, lookback: L, horizon: H, channels: C } = ws;
  const out = new Float32Array(n * H * C);
  for (let w = 0; w < n; w++) {
    const last = ws.x.subarray((w * L + L - 1) * C, (w * L + L) * C);
    for (let h = 0; h < H; h++) out.set(last, (w * H + h) * C);
  }
  return out;
}
