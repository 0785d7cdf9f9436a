import type { ModelKind } from '../../agent/trainer/config.js';
import type { ModelSpec } from '../../agent/trainer/model.js';
import { forecastErrors, persistenceForecast, type ForecastErrors } from '../../agent/trainer/evaluate.js';
import { Forecaster, trainWithValidation } from '../../agent/trainer/forecaster.js';
import { mixRecent, RECENT_MEMORY } from '../../agent/trainer/mixture.js';
import { bestHead, headCount, headStatistics, packStatistics, personalHeads, POOLED_LAMBDAS, randomiseHiddenBias, setHead, unpackStatistics } from '../../agent/trainer/ridge.js';
import { fitScaler, type Scaler } from '../../agent/trainer/scaler.js';
import { buildWindows, chronologicalSplit, concatWindows, knownTargetCounts, windowStarts, type WindowSet } from '../../agent/trainer/windows.js';
import type { Logger } from '../../common/log.js';
import { fedAvg, type ClientUpdate } from '../strategy/fedavg.js';
import { pooledRelativeLoss } from '../strategy/model-selection.js';
import { markGaps, type ClientSeries } from './csv.js';

export interface SimulationOptions {
  model: ModelKind;
  lookback: number;
  horizon: number;
  hiddenUnits: number;
  channelIndependent?: boolean;
  rounds: number;
  /** Local epochs per federated round; local-only and centralised training get rounds × this. */
  localEpochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Each client's last fraction of samples is the test set (never seen by any method). */
  testFraction: number;
  /** Tail of each client's training part used to pick the best epoch / round. */
  validationFraction: number;
  /**
   * Personalisation after federation: each client fine-tunes the final global model for this
   * many epochs on its own training part and keeps the best of (global, each fine-tuned epoch)
   * on its own validation tail. 0 = plain FedAvg. Default 4 (two rounds' worth of local work;
   * measured on NAB ec2_cpu and GCD VMs 801–850: 4 beat 2 there, see the simulate command).
   */
  fineTuneEpochs?: number;
  /**
   * Random features of the federated ridge model (agent/trainer/ridge.ts) whose forecast joins
   * the federated mixture; 0 leaves it out. Default 256.
   */
  ridgeFeatures?: number;
  /**
   * The mixture shares of each test window are fitted on the windows whose targets were known at
   * its origin, a window's weight falling by e for every this-many newer ones (mixture.ts
   * mixRecent), as a deployed agent refits them; 0 fits them once on the validation tail.
   * Default RECENT_MEMORY.
   */
  mixMemory?: number;
  /** Per client, calibrate the output (change limit, blend toward persistence) as the agent does (Forecaster.calibrateOutput; default true). */
  calibrate?: boolean;
  /** Aggregates a round's updates; plaintext FedAvg unless the caller swaps in the encrypted path. */
  aggregate?: (updates: ClientUpdate[]) => Float32Array | Promise<Float32Array>;
  logger?: Logger;
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
  /** Every method's scores; `ridge` only when the ridge model took part (ridgeFeatures > 0). */
  scores: Record<Exclude<ScoredMethod, 'ridge'>, MethodScores> & { ridge?: MethodScores };
  /** The same errors per client (in `clients` order), before averaging; `ridge` empty when it took no part. */
  perClient: Record<ScoredMethod, ForecastErrors[]>;
  /** Test region of the first client, original units: actual values and 1-step / H-step forecasts. */
  plot: { client: string; actual: number[][]; persistence: number[][]; federatedStep1: number[][]; federatedLast: number[][] };
  weights: number;
  /**
   * The FedAvg round kept (best pooled validation score); 0 = no round beat the untrained model,
   * which forecasts persistence, so FedAvg contributed nothing.
   */
  fedavgBestRound: number;
  /** Each metric's pooled ridge penalty (empty when the ridge model is left out). */
  ridgePenalties: Record<string, number>;
  seconds: Record<'local' | 'federated' | 'centralized', number>;
}

interface Client {
  name: string;
  scaler: Scaler;
  train: WindowSet; // standardised
  validation: WindowSet; // standardised
  test: WindowSet; // standardised inputs and targets
  testRaw: WindowSet; // original units, for errors
  /** Per test window: how many windows (validation tail, then test) had known targets at its origin. */
  testKnown: Int32Array;
}

/** Standardise x and y with one client's scaler (per-machine scaling). */
function standardise(ws: WindowSet, s: Scaler): WindowSet {
  const C = ws.channels;
  const x = Float32Array.from(ws.x, (v, i) => (v - s.mean[i % C]!) / s.std[i % C]!);
  const y = Float32Array.from(ws.y, (v, i) => (v - s.mean[i % C]!) / s.std[i % C]!);
  return { ...ws, x, y };
}

function unstandardise(pred: Float32Array, s: Scaler, C: number): Float32Array {
  return Float32Array.from(pred, (v, i) => v * s.std[i % C]! + s.mean[i % C]!);
}

function prepareClient(series: ClientSeries, opts: SimulationOptions): Client | undefined {
  const C = series.metrics.length;
  const T = series.values.length / C;
  const { lookback: L, horizon: H } = opts;
  const testStart = Math.floor(T * (1 - opts.testFraction));
  // Training windows end before the test region; test windows start their targets inside it
  // (their inputs may look back across the boundary, as a deployed model's would).
  const before = buildWindows(series.values.subarray(0, testStart * C), C, L, H);
  const testValues = series.values.subarray(Math.max(0, testStart - L) * C);
  const testRaw = buildWindows(testValues, C, L, H);
  const { train, validation } = chronologicalSplit(before, opts.validationFraction);
  if (train.n < 8 || validation.n < 1 || testRaw.n < 1) return undefined;
  const scaler = fitScaler(train);
  // Every validation target precedes the test part, and test windows see the test targets that
  // ended by their origin.
  const testKnown = knownTargetCounts(windowStarts(testValues, C, L, H), H).map((j) => validation.n + j);
  return {
    name: series.name,
    scaler,
    train: standardise(train, scaler),
    validation: standardise(validation, scaler),
    test: standardise(testRaw, scaler),
    testRaw,
    testKnown,
  };
}

function identityScaler(C: number): Scaler {
  return { mean: new Array(C).fill(0), std: new Array(C).fill(1) };
}

/**
 * Test forecasts in original units. With `calibrate`, the client first fits the forecaster's
 * output calibration on its own training and validation parts (Forecaster.calibrateOutput, what
 * the agent does after each round); it never sees the test part.
 */
function clientForecast(f: Forecaster, c: Client, calibrate: boolean): Float32Array {
  return unstandardise(calibratedForecasts(f, c, calibrate, [c.test])[0]!, c.scaler, c.test.channels);
}

/** Forecasts of each window set (standardised units) by the forecaster, calibrated once for client c. */
function calibratedForecasts(f: Forecaster, c: Client, calibrate: boolean, sets: WindowSet[]): Float32Array[] {
  if (calibrate) f.calibrateOutput(c.train, c.validation);
  try {
    return sets.map((ws) => f.predict(ws.x, ws.n));
  } finally {
    f.calibration = undefined; // the next client (or training) starts from the raw model
  }
}

function clientErrors(f: Forecaster, c: Client, calibrate: boolean): ForecastErrors {
  return forecastErrors(clientForecast(f, c, calibrate), c.testRaw);
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

/**
 * The pooled model's score from every client's validation tail (strategy/model-selection.ts),
 * over every channel or over one.
 */
function pooledValidationScore(f: Forecaster, clients: Client[], channel?: number): number {
  return pooledRelativeLoss(clients.map((c) => f.relativeLoss(c.validation, channel)));
}

/**
 * The federated ridge model (agent/trainer/ridge.ts) in one aggregation round: each client sends
 * its mean head statistics (one set per channel) through `aggregate` (FedAvg weighted by windows:
 * the pooled statistics); each channel's pooled penalty is the one with the best pooled
 * validation score on that channel (as FedAvg's round is picked); then each client refits each
 * channel toward its pooled coefficients, with the penalty per step that suits its own validation
 * tail. Returns each client's calibrated forecasts of its validation tail and test part
 * (standardised units), and each channel's pooled penalty.
 */
async function federatedRidge(
  clients: Client[],
  spec: ModelSpec,
  opts: SimulationOptions & { ridgeFeatures: number },
  aggregate: (updates: ClientUpdate[]) => Float32Array | Promise<Float32Array>,
  calibrate: boolean,
): Promise<{ forecasts: { validation: Float32Array; test: Float32Array }[]; penalties: number[] }> {
  const C = spec.channels;
  const f = new Forecaster({ ...spec, kind: 'mlp', hiddenUnits: opts.ridgeFeatures }, { seed: opts.seed, learningRate: opts.learningRate, scaler: identityScaler(C) });
  try {
    randomiseHiddenBias(f, opts.seed);
    const heads = headCount(f);
    let features = 0;
    let outputs = 0;
    // Kept packed (Float32 means of the upper triangles): a quarter of the full Float64 sums, which
    // matters with many clients (256 features, 2 channels: 300 KB a client).
    const own = clients.map((c) => {
      const stats = headStatistics(f, c.train);
      ({ features, outputs } = stats[0]!);
      return { weights: packStatistics(stats), samples: c.train.n };
    });
    const windows = own.reduce((a, u) => a + u.samples, 0);
    const pooled = unpackStatistics(await aggregate(own), features, outputs, windows, heads);
    const global = pooled.map((stats, head) =>
      bestHead(f, stats, () => pooledValidationScore(f, clients, heads > 1 ? head : undefined), { lambdas: POOLED_LAMBDAS }),
    );
    const priors = global.map((g) => g.beta);
    const forecasts = clients.map((c, k) => {
      const mine = unpackStatistics(own[k]!.weights, features, outputs, own[k]!.samples, heads);
      const personal = personalHeads(f, mine, priors, c.validation);
      return headForecasts(f, personal.map((p) => p.beta), c, calibrate);
    });
    return { forecasts, penalties: heads > 1 ? global.map((g) => g.lambda) : new Array<number>(C).fill(global[0]!.lambda) };
  } finally {
    f.dispose();
  }
}

/**
 * Calibrated forecasts of client c's validation tail and test part by a ridge model with these
 * heads: with one head per channel, each channel's values come from the model carrying its head
 * (a channel-independent model forecasts each channel from that channel's inputs alone).
 */
function headForecasts(f: Forecaster, betas: Float64Array[], c: Client, calibrate: boolean): { validation: Float32Array; test: Float32Array } {
  const C = c.validation.channels;
  const out = { validation: new Float32Array(c.validation.y.length), test: new Float32Array(c.test.y.length) };
  for (const [head, beta] of betas.entries()) {
    setHead(f, beta);
    const [validation, test] = calibratedForecasts(f, c, calibrate, [c.validation, c.test]);
    // This head's values: its channel's (every C-th, from `head`), or all of a joint model's.
    const [first, stride] = betas.length > 1 ? [head, C] : [0, 1];
    const take = (from: Float32Array, to: Float32Array) => {
      for (let i = first; i < from.length; i += stride) to[i] = from[i]!;
    };
    take(validation!, out.validation);
    take(test!, out.test);
  }
  return out;
}

/** a then b, in one new array (a client's validation-tail values, then its test part's). */
function concatFloats(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Like Array.map for an async callback, one element at a time (training shares one model). */
async function mapInOrder<T, R>(items: T[], fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const [i, item] of items.entries()) out.push(await fn(item, i));
  return out;
}

/**
 * Persistence, local-only, federated and centralised forecasters on the same clients, windows,
 * model and seeds, scored on each client's held-out tail. The federated path is the agent's
 * training code (Forecaster.train) plus the coordinator's aggregation (fedAvg, or `aggregate`).
 */
export async function runSimulation(series: ClientSeries[], opts: SimulationOptions): Promise<SimulationResult> {
  const log = opts.logger;
  const metrics = series[0]!.metrics;
  const C = metrics.length;
  const clients: Client[] = [];
  const skippedClients: string[] = [];
  const timestampGaps = { gaps: 0, missing: 0 };
  for (const raw of series) {
    const { series: s, gaps, missing } = markGaps(raw, opts.lookback + opts.horizon);
    timestampGaps.gaps += gaps;
    timestampGaps.missing += missing;
    const c = prepareClient(s, opts);
    if (c) clients.push(c);
    else skippedClients.push(s.name);
  }
  if (clients.length === 0) throw new RangeError(`no client has enough samples for lookback ${opts.lookback} + horizon ${opts.horizon}`);
  const spec: ModelSpec = { kind: opts.model, lookback: opts.lookback, horizon: opts.horizon, channels: C, hiddenUnits: opts.hiddenUnits, channelIndependent: opts.channelIndependent ?? true };
  const f = new Forecaster(spec, { seed: opts.seed, learningRate: opts.learningRate, scaler: identityScaler(C) });
  const aggregate = opts.aggregate ?? fedAvg;
  const totalEpochs = opts.rounds * opts.localEpochs;
  const fineTuneEpochs = opts.fineTuneEpochs ?? 4;
  const ridgeFeatures = opts.ridgeFeatures ?? 256;
  // The same per-client output calibration for every learned method, so the comparison stays fair.
  const calibrate = opts.calibrate !== false;
  const mixMemory = opts.mixMemory ?? RECENT_MEMORY;
  const H = opts.horizon;
  try {
    const initial = f.getWeights();
    const trainOpts = { batchSize: opts.batchSize, seed: opts.seed };

    const persistence = clients.map((c) => forecastErrors(persistenceForecast(c.testRaw), c.testRaw));

    let started = performance.now();
    // Each local model's calibrated forecasts of the validation tail and the test part, kept for
    // the federated pipeline's mixture (standardised units).
    const localForecasts: { validation: Float32Array; test: Float32Array }[] = [];
    const local = await mapInOrder(clients, async (c, k) => {
      f.setWeights(initial);
      f.resetOptimizer();
      await trainWithValidation(f, c.train, c.validation, { ...trainOpts, epochs: totalEpochs, seed: opts.seed + 1000 * k });
      const [validation, test] = calibratedForecasts(f, c, calibrate, [c.validation, c.test]);
      localForecasts.push({ validation: validation!, test: test! });
      return forecastErrors(unstandardise(test!, c.scaler, C), c.testRaw);
    });
    const localSeconds = (performance.now() - started) / 1000;
    log?.info({ seconds: localSeconds, clients: clients.length }, 'local-only training done');

    started = performance.now();
    const ridge = ridgeFeatures > 0 ? await federatedRidge(clients, spec, { ...opts, ridgeFeatures }, aggregate, calibrate) : undefined;
    let global = initial;
    f.setWeights(global);
    let best = { loss: pooledValidationScore(f, clients), weights: global, round: 0 };
    for (let round = 1; round <= opts.rounds; round++) {
      const updates: ClientUpdate[] = [];
      for (const [k, c] of clients.entries()) {
        f.setWeights(global);
        // Adam's moments belong to one client's landscape; each round starts clean.
        f.resetOptimizer();
        await f.train(c.train, { ...trainOpts, epochs: opts.localEpochs, seed: opts.seed + 1000 * k + round });
        updates.push({ weights: f.getWeights(), samples: c.train.n });
      }
      global = await aggregate(updates);
      f.setWeights(global);
      // Clients report their validation loss on the global model relative to persistence's; the
      // round with the best pooled score is kept.
      const loss = pooledValidationScore(f, clients);
      if (loss < best.loss) best = { loss, weights: global, round };
      log?.debug({ round, validationLoss: loss }, 'federated round');
    }
    f.setWeights(best.weights);
    const fedavg = clients.map((c) => clientErrors(f, c, calibrate));
    // Personalised FedAvg ("FedAvg + local fine-tuning"): each client starts from the final global
    // model and fine-tunes it on its own training part, keeping whichever of (global, fine-tuned
    // epochs) has the lower loss on its own validation tail. Raw data never leaves the client: only
    // the weights that crossed the (encrypted) FedAvg rounds are shared, so this is still federated
    // learning; the personalised model simply stays on its machine, as the agent's would.
    let pred0: Float32Array = new Float32Array(0);
    const fineTuned: ForecastErrors[] = [];
    const ridgeErrors: ForecastErrors[] = [];
    const federated = await mapInOrder(clients, async (c, k) => {
      f.setWeights(best.weights);
      f.resetOptimizer();
      if (fineTuneEpochs > 0) {
        await trainWithValidation(f, c.train, c.validation, { ...trainOpts, epochs: fineTuneEpochs, seed: opts.seed + 1000 * k + opts.rounds + 1 });
      }
      // Each model is calibrated once and forecasts the validation tail (for the share) and the test part.
      const [fineTunedValidation, fineTunedScaled] = calibratedForecasts(f, c, calibrate, [c.validation, c.test]);
      const fineTunedTest = unstandardise(fineTunedScaled!, c.scaler, C);
      fineTuned.push(forecastErrors(fineTunedTest, c.testRaw));
      // The federated part: the fine-tuned FedAvg model, mixed with the personalised ridge model
      // when there is one, then with the client's own local model, with shares per channel fitted
      // as the agent would: on the latest windows whose targets it has seen (mixRecent).
      const r = ridge?.forecasts[k];
      if (r) ridgeErrors.push(forecastErrors(unstandardise(r.test, c.scaler, C), c.testRaw));
      const own = localForecasts[k]!;
      // Each piece's forecasts of the validation tail, then of the test part: one series in time order.
      const stages = [
        concatFloats(fineTunedValidation!, fineTunedScaled!),
        ...(r ? [concatFloats(r.validation, r.test)] : []),
        concatFloats(own.validation, own.test),
      ];
      // mixMemory 0: every test window's shares fitted on the whole validation tail, once.
      const [known, memory] = mixMemory > 0 ? [c.testKnown, mixMemory] : [new Int32Array(c.test.n).fill(c.validation.n), Infinity];
      const mixed = mixRecent(stages, concatFloats(c.validation.y, c.test.y), { horizon: H, channels: C }, known, c.validation.n, memory);
      const pred = unstandardise(mixed, c.scaler, C);
      if (k === 0) pred0 = pred;
      return forecastErrors(pred, c.testRaw);
    });
    const federatedSeconds = (performance.now() - started) / 1000;
    log?.info({ seconds: federatedSeconds, bestRound: best.round, fineTuneEpochs }, 'federated training done');

    const c0 = clients[0]!;
    const rows = (fn: (w: number) => number[]) => Array.from({ length: c0.test.n }, (_, w) => fn(w));
    const plot = {
      client: c0.name,
      actual: rows((w) => Array.from(c0.testRaw.y.subarray(w * H * C, w * H * C + C))),
      persistence: rows((w) => Array.from(c0.testRaw.x.subarray(((w + 1) * opts.lookback - 1) * C, (w + 1) * opts.lookback * C))),
      federatedStep1: rows((w) => Array.from(pred0.subarray(w * H * C, w * H * C + C))),
      federatedLast: rows((w) => Array.from(pred0.subarray(((w + 1) * H - 1) * C, (w + 1) * H * C))),
    };

    started = performance.now();
    f.setWeights(initial);
    f.resetOptimizer();
    await trainWithValidation(
      f,
      concatWindows(clients.map((c) => c.train)),
      concatWindows(clients.map((c) => c.validation)),
      { ...trainOpts, epochs: totalEpochs, validationScore: () => pooledValidationScore(f, clients) },
    );
    const centralized = clients.map((c) => clientErrors(f, c, calibrate));
    const centralizedSeconds = (performance.now() - started) / 1000;

    return {
      metrics,
      clients: clients.map((c) => c.name),
      skippedClients,
      timestampGaps,
      scores: {
        persistence: summarise(persistence, metrics),
        local: summarise(local, metrics),
        federated: summarise(federated, metrics),
        fedavg: summarise(fedavg, metrics),
        fineTuned: summarise(fineTuned, metrics),
        ...(ridge ? { ridge: summarise(ridgeErrors, metrics) } : {}),
        centralized: summarise(centralized, metrics),
      },
      perClient: { persistence, local, federated, fedavg, fineTuned, ridge: ridgeErrors, centralized },
      plot,
      weights: f.weightCount,
      fedavgBestRound: best.round,
      ridgePenalties: ridge ? Object.fromEntries(metrics.map((m, c) => [m, ridge.penalties[c]!])) : {},
      seconds: { local: localSeconds, federated: federatedSeconds, centralized: centralizedSeconds },
    };
  } finally {
    f.dispose();
  }
}
