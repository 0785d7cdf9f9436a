import { forecastErrors, persistenceForecast, type ForecastErrors } from '../agent/trainer/evaluate.js';
import { Forecaster, trainWithValidation } from '../agent/trainer/forecaster.js';
import { fitScaler, type Scaler } from '../agent/trainer/scaler.js';
import { buildWindows, chronologicalSplit, concatWindows, knownTargetCounts, sliceWindows, windowStarts, type WindowSet } from '../agent/trainer/windows.js';
import { mixedForecast, pieceForecasts } from '../agent/federation/federated-model.js';
import type { ParticipantData } from '../agent/federation/participant.js';
import { specOf } from '../agent/federation/engines.js';
import type { AgentBundle, CoordinatorBundle } from '../common/crypto/index.js';
import type { Logger } from '../common/log.js';
import type { FederationModel } from '../common/protocol/federation-model.js';
import type { RoundSummary } from '../coordinator/round/state.js';
import { pooledRelativeLoss } from '../coordinator/strategy/model-selection.js';
import type { AgentCodec } from '../agent/federation/codec.js';
import type { PrivacySettings } from '../agent/federation/privacy.js';
import { markGaps, type ClientSeries, type MarkedGaps } from './csv.js';
import { runInProcessFederation } from './federation.js';
import { noWindowsError } from './no-windows.js';

/**
 * Persistence, local-only, federated and centralised forecasting on the same machines, windows
 * and seeds, scored on each machine's held-out tail. "Federated" is a real federation session
 * (simulate/federation.ts): the coordinator's round runner and one agent participant per
 * machine, the code the daemons run, over an in-memory transport (or MQTT). Local-only is each
 * participant's own local piece; centralised training, which no federation can do, is computed
 * here as the reference.
 */
export interface SimulationOptions {
  model: FederationModel;
  /** Each client's last fraction of samples is the test set (never seen by any method). */
  testFraction: number;
  /** CKKS key material; omit for plaintext FedAvg. */
  keys?: { agent: AgentBundle; coordinator: CoordinatorBundle };
  transport?: 'memory' | 'mqtt';
  wrapCodec?: (c: AgentCodec) => AgentCodec;
  onRound?: (s: RoundSummary) => void;
  /** Differential privacy on every agent's updates (agent/federation/privacy.ts). */
  privacy?: PrivacySettings;
  logger: Logger;
  /** The --resample grid the series were put on, if any (named when gaps leave no windows). */
  resampleSeconds?: number;
}

export const METHODS = ['persistence', 'local', 'federated', 'centralized'] as const;
export type Method = (typeof METHODS)[number];
/**
 * METHODS plus the pieces of the federated pipeline reported beside them: plain FedAvg (the global
 * model), FedAvg + local fine-tuning, and the personalised federated ridge model (each before the
 * mixture).
 */
export type ScoredMethod = Method | 'fedavg' | 'fineTuned' | 'ridge';

export interface MethodScores {
  /** Mean over clients of each client's error, per metric, over every step ahead. */
  rmse: Record<string, number>;
  mae: Record<string, number>;
  /** [metric][step]: mean over clients of the per-step RMSE. */
  rmseByStep: Record<string, number[]>;
}

export interface SimulationResult {
  metrics: string[];
  clients: string[];
  skippedClients: string[];
  /** Holes in the clients' timestamps, filled with missing samples (csv.ts markGaps): how many, and how many samples. */
  timestampGaps: { gaps: number; missing: number };
  /** Every method's scores; `ridge` only when the ridge model took part. */
  scores: Record<Exclude<ScoredMethod, 'ridge'>, MethodScores> & { ridge?: MethodScores };
  /** The same errors per client (in `clients` order), before averaging; `ridge` empty when it took no part. */
  perClient: Record<ScoredMethod, ForecastErrors[]>;
  /** Test region of the first client, original units: actual values and 1-step / H-step forecasts. */
  plot: { client: string; actual: number[][]; persistence: number[][]; federatedStep1: number[][]; federatedLast: number[][] };
  weights: number;
  /** The FedAvg round kept (its step in the session; 0 = no round beat the untrained model, which forecasts persistence). */
  fedavgBestRound: number;
  /** Each metric's pooled ridge penalty (empty when the ridge model is left out). */
  ridgePenalties: Record<string, number>;
  rounds: RoundSummary[];
  seconds: Record<'federated' | 'centralized', number>;
  /** With DP: the largest ε any agent spent (all spend alike here: every agent is in every round), at δ, over the rounds charged. */
  privacy?: { epsilon: number; delta: number; rounds: number; noiseMultiplier: number; clipNorm: number; ridgeClipNorm: number };
}

interface Client {
  name: string;
  train: WindowSet;
  validation: WindowSet;
  test: WindowSet;
  /** Per test window: how many windows (validation tail, then test) had known targets at its origin. */
  testKnown: Int32Array;
}

function prepareClient(series: ClientSeries, m: FederationModel, testFraction: number): Client | undefined {
  const C = series.metrics.length;
  const T = series.values.length / C;
  const { lookback: L, horizon: H } = m;
  const testStart = Math.floor(T * (1 - testFraction));
  // Training windows end before the test region; test windows start their targets inside it
  // (their inputs may look back across the boundary, as a deployed model's would).
  const all = buildWindows(series.values.subarray(0, testStart * C), C, L, H);
  const before = sliceWindows(all, all.n - m.maxWindows, all.n);
  const testValues = series.values.subarray(Math.max(0, testStart - L) * C);
  const test = buildWindows(testValues, C, L, H);
  const { train, validation } = chronologicalSplit(before, m.validationFraction);
  if (train.n < m.minWindows || validation.n < 1 || test.n < 1) return undefined;
  // Every validation target precedes the test part, and test windows see the test targets that
  // ended by their origin.
  const testKnown = knownTargetCounts(windowStarts(testValues, C, L, H), H).map((j) => validation.n + j);
  return { name: series.name, train, validation, test, testKnown };
}

function summarise(perClient: ForecastErrors[], metrics: string[]): MethodScores {
  const mean = (f: (e: ForecastErrors) => number) => perClient.reduce((a, e) => a + f(e), 0) / perClient.length;
  const rmse: Record<string, number> = {};
  const mae: Record<string, number> = {};
  const rmseByStep: Record<string, number[]> = {};
  for (const [c, m] of metrics.entries()) {
    rmse[m] = mean((e) => e.rmse[c]!);
    mae[m] = mean((e) => e.mae[c]!);
    rmseByStep[m] = perClient[0]!.rmseByStep.map((_, h) => mean((e) => e.rmseByStep[h]![c]!));
  }
  return { rmse, mae, rmseByStep };
}

function standardise(ws: WindowSet, s: Scaler): WindowSet {
  const C = ws.channels;
  const x = Float32Array.from(ws.x, (v, i) => (v - s.mean[i % C]!) / s.std[i % C]!);
  const y = Float32Array.from(ws.y, (v, i) => (v - s.mean[i % C]!) / s.std[i % C]!);
  return { ...ws, x, y };
}

/**
 * Centralised training, the reference no federation can reach: one model trained on every
 * machine's windows pooled, each machine standardised by its own scaler, the epochs ranked by
 * the machines' mean validation loss relative to persistence (as FedAvg's rounds are), and its
 * forecasts calibrated per machine like every learned method's.
 */
async function centralised(clients: Client[], m: FederationModel): Promise<ForecastErrors[]> {
  const spec = specOf(m);
  const C = spec.channels;
  const f = new Forecaster(spec, { seed: m.seed, learningRate: m.learningRate, scaler: { mean: new Array(C).fill(0), std: new Array(C).fill(1) } });
  try {
    const scaled = clients.map((c) => {
      const s = fitScaler(c.train);
      return { s, train: standardise(c.train, s), validation: standardise(c.validation, s), test: standardise(c.test, s) };
    });
    const score = () => pooledRelativeLoss(scaled.map((c) => f.relativeLoss(c.validation)));
    await trainWithValidation(f, concatWindows(scaled.map((c) => c.train)), concatWindows(scaled.map((c) => c.validation)), {
      epochs: m.rounds * m.localEpochs,
      batchSize: m.batchSize,
      seed: m.seed,
      validationScore: score,
    });
    return clients.map((c, k) => {
      const s = scaled[k]!;
      if (m.calibrate) f.calibrateOutput(s.train, s.validation);
      const pred = f.predict(s.test.x, s.test.n);
      f.calibration = undefined;
      const raw = Float32Array.from(pred, (v, i) => v * s.s.std[i % C]! + s.s.mean[i % C]!);
      return forecastErrors(raw, c.test);
    });
  } finally {
    f.dispose();
  }
}

export async function runSimulation(series: ClientSeries[], opts: SimulationOptions): Promise<SimulationResult> {
  const m = opts.model;
  const log = opts.logger;
  const metrics = series[0]!.metrics;
  if (metrics.join() !== m.metrics.join()) throw new RangeError(`the series have metrics ${metrics.join(',')}, the model ${m.metrics.join(',')}`);
  const C = metrics.length;
  const H = m.horizon;
  const clients: Client[] = [];
  const skippedClients: string[] = [];
  const timestampGaps = { gaps: 0, missing: 0 };
  const skipped: { raw: ClientSeries; marked: MarkedGaps }[] = [];
  for (const raw of series) {
    const marked = markGaps(raw, m.lookback + m.horizon);
    timestampGaps.gaps += marked.gaps;
    timestampGaps.missing += marked.missing;
    const c = prepareClient(marked.series, m, opts.testFraction);
    if (c) clients.push(c);
    else {
      skippedClients.push(raw.name);
      skipped.push({ raw, marked });
    }
  }
  if (clients.length === 0) throw noWindowsError(skipped, (s) => prepareClient(s, m, opts.testFraction) !== undefined, m, opts.resampleSeconds);

  const persistence = clients.map((c) => forecastErrors(persistenceForecast(c.test), c.test));

  let started = performance.now();
  const agents = clients.map((c, k) => {
    const data: ParticipantData = { sessionWindows: () => ({ train: c.train, validation: c.validation }) };
    return { id: `client-${String(k).padStart(4, '0')}`, data, seedOffset: 1000 * k };
  });
  const fed = await runInProcessFederation({
    model: m,
    agents,
    logger: log,
    ...(opts.keys ? { keys: opts.keys } : {}),
    ...(opts.transport ? { transport: opts.transport } : {}),
    ...(opts.wrapCodec ? { wrapCodec: opts.wrapCodec } : {}),
    ...(opts.onRound ? { onRound: opts.onRound } : {}),
    ...(opts.privacy ? { privacy: opts.privacy } : {}),
  });
  const spent = [...fed.privacy.values()].map((p) => p.status());
  const privacy = opts.privacy && spent.length > 0
    ? { epsilon: Math.max(...spent.map((p) => p.epsilon)), delta: opts.privacy.delta, rounds: Math.max(...spent.map((p) => p.rounds_charged)), noiseMultiplier: opts.privacy.noise_multiplier, clipNorm: opts.privacy.clip_norm, ridgeClipNorm: opts.privacy.ridge_clip_norm }
    : undefined;
  const engines = fed.engines;
  try {
    const names = ['local', 'federated', 'fedavg', 'fineTuned', 'ridge'] as const;
    const errors: Record<(typeof names)[number], ForecastErrors[]> = { local: [], federated: [], fedavg: [], fineTuned: [], ridge: [] };
    let pred0: Float32Array = new Float32Array(0);
    let bestRound = 0;
    let lambdas: number[] = [];
    for (const [k, c] of clients.entries()) {
      const fm = fed.models.get(agents[k]!.id);
      if (!fm) throw new Error(`agent ${agents[k]!.id} (${c.name}) ended the session without a federated model`);
      bestRound = fm.bestRound;
      lambdas = fm.ridge?.lambdas ?? [];
      // The agent forecasts its validation tail and test part as one series in time order; the
      // mixture shares of each test window are fitted on the windows with targets known by then.
      const ws = concatWindows([c.validation, c.test]);
      const known = m.mixMemory > 0 ? c.testKnown : new Int32Array(c.test.n).fill(c.validation.n);
      const { pieces, mixed } = await engines.exclusive(() => {
        const pieces = pieceForecasts(engines, fm, ws);
        return { pieces, mixed: mixedForecast(engines, fm, ws, known, c.validation.n, pieces) };
      });
      const tail = (p: Float32Array) => p.subarray(c.validation.n * H * C);
      errors.local.push(forecastErrors(tail(pieces.local), c.test));
      errors.fedavg.push(forecastErrors(tail(pieces.fedavg), c.test));
      errors.fineTuned.push(forecastErrors(tail(pieces.fineTuned), c.test));
      if (pieces.ridge) errors.ridge.push(forecastErrors(tail(pieces.ridge), c.test));
      errors.federated.push(forecastErrors(mixed, c.test));
      if (k === 0) pred0 = mixed;
    }
    const federatedSeconds = (performance.now() - started) / 1000;
    log.info({ seconds: federatedSeconds, rounds: fed.history.length }, 'federated session done');

    started = performance.now();
    const centralized = await centralised(clients, m);
    const centralizedSeconds = (performance.now() - started) / 1000;

    const c0 = clients[0]!;
    const rows = (fn: (w: number) => number[]) => Array.from({ length: c0.test.n }, (_, w) => fn(w));
    const plot = {
      client: c0.name,
      actual: rows((w) => Array.from(c0.test.y.subarray(w * H * C, w * H * C + C))),
      persistence: rows((w) => Array.from(c0.test.x.subarray(((w + 1) * m.lookback - 1) * C, (w + 1) * m.lookback * C))),
      federatedStep1: rows((w) => Array.from(pred0.subarray(w * H * C, w * H * C + C))),
      federatedLast: rows((w) => Array.from(pred0.subarray(((w + 1) * H - 1) * C, (w + 1) * H * C))),
    };
    // The best round as a step of the session (its FedAvg rounds follow the ridge round).
    const step = fed.history.find((h) => h.round === bestRound)?.step ?? 0;
    const hasRidge = errors.ridge.length === clients.length;
    return {
      metrics,
      clients: clients.map((c) => c.name),
      skippedClients,
      timestampGaps,
      scores: {
        persistence: summarise(persistence, metrics),
        local: summarise(errors.local, metrics),
        federated: summarise(errors.federated, metrics),
        fedavg: summarise(errors.fedavg, metrics),
        fineTuned: summarise(errors.fineTuned, metrics),
        ...(hasRidge ? { ridge: summarise(errors.ridge, metrics) } : {}),
        centralized: summarise(centralized, metrics),
      },
      perClient: { persistence, local: errors.local, federated: errors.federated, fedavg: errors.fedavg, fineTuned: errors.fineTuned, ridge: hasRidge ? errors.ridge : [], centralized },
      plot,
      weights: engines.initial.length,
      fedavgBestRound: step,
      ridgePenalties: hasRidge && lambdas.length > 0 ? Object.fromEntries(metrics.map((name, c) => [name, lambdas[lambdas.length === C ? c : 0]!])) : {},
      rounds: fed.history,
      seconds: { federated: federatedSeconds, centralized: centralizedSeconds },
      ...(privacy ? { privacy } : {}),
    };
  } finally {
    engines.dispose();
  }
}
