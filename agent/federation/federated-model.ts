import type { FederationModel } from '../../common/protocol/federation-model.js';
import type { OutputCalibration } from '../trainer/forecaster.js';
import { mixRecent } from '../trainer/mixture.js';
import { headCount, setHead } from '../trainer/ridge.js';
import type { Scaler } from '../trainer/scaler.js';
import type { WindowSet } from '../trainer/windows.js';
import type { Engines } from './engines.js';

/**
 * What one federation session leaves an agent: the pieces it forecasts with and how to mix them.
 * - fineTuned: the session's best global model fine-tuned on this agent's windows;
 * - ridge: the personalised federated ridge model (one head per channel), when the session had one;
 * - local: a model trained on this agent's windows alone;
 * - fedavg: the best global model itself (reported by simulate; not part of the mixture).
 * The forecast is fineTuned, mixed per channel with ridge, then with local, each share refitted
 * for every forecast on the windows whose targets the agent has seen (agent/trainer/mixture.ts
 * mixRecent). Each piece carries its own output calibration (Forecaster.calibrateOutput), all
 * fitted on the session's training and validation windows.
 */
export interface Piece {
  weights: Float32Array;
  calibration: OutputCalibration | undefined;
}

export interface FederatedModel {
  session: number;
  /** The final round that delivered it, and the FedAvg round whose global it fine-tuned (0: the initial model). */
  round: number;
  bestRound: number;
  model: FederationModel;
  configHash: string;
  scaler: Scaler;
  fedavg: Piece;
  fineTuned: Piece;
  local: Piece;
  ridge: { betas: Float64Array[]; calibrations: (OutputCalibration | undefined)[]; lambdas: number[] } | undefined;
  createdAt: string;
}

export interface PieceForecasts {
  fedavg: Float32Array;
  fineTuned: Float32Array;
  ridge: Float32Array | undefined;
  local: Float32Array;
}

function predictWith(engines: Engines, fm: FederatedModel, piece: Piece, ws: WindowSet): Float32Array {
  const f = engines.model;
  f.setWeights(piece.weights);
  f.scaler = fm.scaler;
  f.calibration = piece.calibration;
  try {
    return f.predict(ws.x, ws.n);
  } finally {
    f.calibration = undefined;
  }
}

/** The ridge piece: each channel's values from the model carrying that channel's head. */
function ridgeForecast(engines: Engines, fm: FederatedModel, ws: WindowSet): Float32Array | undefined {
  const r = fm.ridge;
  const f = engines.ridge;
  if (!r || !f) return undefined;
  const C = ws.channels;
  const out = new Float32Array(ws.n * ws.horizon * C);
  const joint = headCount(f) === 1;
  f.scaler = fm.scaler;
  try {
    for (const [head, beta] of r.betas.entries()) {
      setHead(f, beta);
      f.calibration = r.calibrations[head];
      const pred = f.predict(ws.x, ws.n);
      const [first, stride] = joint ? [0, 1] : [head, C];
      for (let i = first; i < pred.length; i += stride) out[i] = pred[i]!;
    }
  } finally {
    f.calibration = undefined;
  }
  return out;
}

/** Every piece's forecasts of these windows, [n × horizon × channels] in the metrics' units. Call inside engines.exclusive. */
export function pieceForecasts(engines: Engines, fm: FederatedModel, ws: WindowSet): PieceForecasts {
  return {
    fedavg: predictWith(engines, fm, fm.fedavg, ws),
    fineTuned: predictWith(engines, fm, fm.fineTuned, ws),
    ridge: ridgeForecast(engines, fm, ws),
    local: predictWith(engines, fm, fm.local, ws),
  };
}

/**
 * The federated forecasts of windows [from, ws.n): shares for window t fitted on the first
 * known[t − from] windows (their targets known at t's origin; only those targets are read).
 * mixMemory 0 weighs every known window alike (the caller then passes the same count for all).
 * Call inside engines.exclusive.
 */
export function mixedForecast(engines: Engines, fm: FederatedModel, ws: WindowSet, known: ArrayLike<number>, from: number, pieces = pieceForecasts(engines, fm, ws)): Float32Array {
  const stages = [pieces.fineTuned, ...(pieces.ridge ? [pieces.ridge] : []), pieces.local];
  const memory = fm.model.mixMemory > 0 ? fm.model.mixMemory : Infinity;
  return mixRecent(stages, ws.y, { horizon: ws.horizon, channels: ws.channels }, known, from, memory);
}
