import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { selectBackend, yieldToEventLoop, type BackendStatus } from './backends.js';
import type { TrainerConfig } from './config.js';
import { persistenceForecast } from './evaluate.js';
import { Forecaster, trainWithValidation } from './forecaster.js';
import { clampCounter, clampedWithin, clampForecast, countClamped } from './forecast-domain.js';
import { sameSpec, specFromConfig, type ModelSpec } from './model.js';
import { keepOtherLayout, moveCorruptAside } from '../../common/state-container.js';
import { loadModel, MODEL_FILE, saveModel } from './persist.js';
import { fitScaler } from './scaler.js';
import { chronologicalSplit, sliceWindows, type WindowSet } from './windows.js';

/** What the job needs from the native ring (native/ring.ts MetricRing satisfies it). */
export interface RingSource {
  windows(lookback: number, horizon: number, stride?: number): WindowSet;
  latest(n: number): { timestamps: Float64Array; values: Float32Array };
}

export interface TrainingJobDeps {
  ring: RingSource;
  channelNames: string[];
  stateDir: string;
  config: TrainerConfig;
  logger: Logger;
  registry: Registry;
  control: { handle(name: string, fn: (req: Record<string, unknown>) => Promise<unknown>): void };
}

export interface TrainingJob {
  stop(): Promise<void>;
  status(): Record<string, unknown>;
  /** Runs one local round now (also what the timer does); resolves when it is saved. */
  trainNow(): Promise<void>;
}

export interface Forecast {
  version: number;
  round: number;
  savedAt: string;
  backend: string | undefined;
  horizon: number;
  /** Per channel, steps ahead 1..horizon, in the channel's own units, inside its domain (forecast-domain.ts). */
  forecast: Record<string, number[]>;
  /** Per channel, how many of those values were clamped into its domain (channels with none are absent). */
  clamped: Record<string, number>;
}

/**
 * The daemon's periodic local training: every `train_interval_s` it takes the ring's newest
 * windows, refits the scaler on the training part, trains from the current model with the best
 * validation epoch kept, saves atomically and refreshes the forecast gauges. Training runs on the
 * event loop in slices of a few batches with a turn of the loop between them (validation losses
 * and backend calibration too), so ring pushes and the control socket wait at most one slice (the
 * sampler has its own worker thread, which also sends the watchdog pings); `max_windows` ×
 * `epochs` bounds a round. A reload stops and restarts the job.
 */
export function startTrainingJob(deps: TrainingJobDeps): TrainingJob {
  const { ring, channelNames, stateDir, config, logger: log, registry } = deps;
  const spec: ModelSpec = specFromConfig(config, channelNames.length);
  if (spec.channels < 1) throw new RangeError('startTrainingJob: channelNames must name at least one channel');
  mkdirSync(stateDir, { recursive: true });

  const forecastGauge = new Gauge({
    name: 'icosfl_forecast',
    help: 'Forecast of a metric steps_ahead samples from now, in the metric\'s unit (model version in icosfl_model_version)',
    labelNames: ['metric', 'steps_ahead'],
    registers: [registry],
  });
  const versionGauge = new Gauge({ name: 'icosfl_model_version', help: 'Version of the forecaster in use (increments on every save)', registers: [registry] });
  const lossGauge = new Gauge({
    name: 'icosfl_trainer_validation_loss',
    help: 'Validation MSE (standardised change from the last value) of the last round; model = trained or persistence',
    labelNames: ['model'],
    registers: [registry],
  });
  const clampedCounter = clampCounter(registry);
  const roundsCounter = new Counter({ name: 'icosfl_trainer_rounds_total', help: 'Local training rounds, by outcome', labelNames: ['outcome'], registers: [registry] });

  let forecaster: Forecaster | undefined;
  let backend: string | undefined;
  let backends: BackendStatus[] = [];
  let version = 0;
  let round = 0;
  let savedAt = '';
  let lastRound: Record<string, unknown> | undefined;
  let state: 'starting' | 'waiting-for-data' | 'idle' | 'training' | 'failed' | 'stopped' = 'starting';
  let lastError: string | undefined;
  let busy: Promise<void> = Promise.resolve();
  let stopped = false;

  const save = () => {
    const f = forecaster!;
    const at = new Date().toISOString();
    // STATE_WRITE_FAILED (a full disk) fails this round and keeps the previous file and version.
    saveModel(stateDir, { spec, scaler: f.scaler!, channelNames, version: version + 1, round, savedAt: at, weights: f.getWeights(), ...(f.calibration ? { calibration: f.calibration } : {}) });
    version++;
    savedAt = at;
    versionGauge.set(version);
  };

  const init = async () => {
    const choice = await selectBackend(config, spec, { logger: log });
    backend = choice.chosen;
    backends = choice.statuses;
    forecaster = new Forecaster(spec, { seed: config.seed, learningRate: config.learning_rate });
    try {
      const saved = loadModel(stateDir);
      if (saved && sameSpec(saved.spec, spec) && saved.channelNames.join() === channelNames.join()) {
        forecaster.setWeights(saved.weights);
        forecaster.scaler = saved.scaler;
        forecaster.calibration = saved.calibration;
        ({ version, round, savedAt } = saved);
        versionGauge.set(version);
        log.info({ version, round }, 'saved model loaded');
      } else if (saved) {
        // Kept, not overwritten by the next save: one backup, replacing an earlier one.
        const keptAs = keepOtherLayout(join(stateDir, MODEL_FILE));
        log.warn({ saved: { ...saved.spec, channelNames: saved.channelNames }, configured: { ...spec, channelNames }, keptAs }, 'saved model has another layout; kept it as a backup and starting a fresh one');
      }
    } catch (err) {
      if (!isIcosflError(err, 'STATE_CORRUPT')) throw err;
      // Keep the damaged file for inspection (one, replacing an earlier one); a fresh model follows.
      const aside = moveCorruptAside(join(stateDir, MODEL_FILE));
      log.error({ err, movedTo: aside }, 'saved model is corrupt; starting a fresh one');
    }
    state = 'idle';
  };

  const refreshForecast = () => {
    if (!forecaster?.scaler) return;
    try {
      const f = predictNext(config.horizon);
      countClamped(clampedCounter, f.clamped);
      for (const [metric, values] of Object.entries(f.forecast)) {
        values.forEach((v, h) => forecastGauge.set({ metric, steps_ahead: String(h + 1) }, v));
      }
    } catch (err) {
      log.debug({ err }, 'forecast not refreshed');
    }
  };

  const predictNext = (horizon: number): Forecast => {
    if (!forecaster?.scaler) throw new IcosflError('RING_NOT_ENOUGH_DATA', 'no trained model yet; the first round needs min_samples windows');
    const { values } = ring.latest(spec.lookback);
    if (values.length !== spec.lookback * spec.channels || !values.every(Number.isFinite)) {
      throw new IcosflError('RING_NOT_ENOUGH_DATA', `the newest ${spec.lookback} samples are not all present yet`);
    }
    const pred = forecaster.predict(values, 1);
    const clamped = clampedWithin(clampForecast(pred, channelNames), horizon);
    const forecast: Record<string, number[]> = {};
    channelNames.forEach((name, c) => {
      forecast[name] = Array.from({ length: horizon }, (_, h) => pred[h * spec.channels + c]!);
    });
    return { version, round, savedAt, backend, horizon, forecast, clamped };
  };

  /**
   * The newest windows (up to max_windows) split chronologically; `reason` says why there are too
   * few, and `needed` how many windows min_samples asks for when that is the reason.
   */
  const latestSplit = (): { train: WindowSet; validation: WindowSet; windows: number } | { reason: string; windows: number; needed?: number } => {
    let ws: WindowSet;
    try {
      ws = ring.windows(spec.lookback, spec.horizon, 1);
    } catch (err) {
      if (!isIcosflError(err, 'RING_NOT_ENOUGH_DATA')) throw err;
      return { reason: 'not enough windows to train yet', windows: 0, needed: config.min_samples };
    }
    if (ws.n < config.min_samples) return { reason: 'not enough windows to train yet', windows: ws.n, needed: config.min_samples };
    const recent = sliceWindows(ws, ws.n - config.max_windows, ws.n);
    const { train, validation } = chronologicalSplit(recent, config.validation_fraction);
    // The split drops lookback + horizon - 1 windows at its boundary (no leakage), so a small
    // min_samples can leave nothing to train on or validate with: wait for more data then.
    if (train.n < 1 || validation.n < 1) return { reason: 'not enough windows on both sides of the validation split yet', windows: recent.n };
    return { train, validation, windows: recent.n };
  };

  const trainRound = async () => {
    if (stopped || !forecaster) return;
    const split = latestSplit();
    if ('reason' in split) {
      state = 'waiting-for-data';
      roundsCounter.inc({ outcome: 'waiting' });
      log.info({ windows: split.windows, needed: split.needed }, split.reason);
      return;
    }
    state = 'training';
    await yieldToEventLoop();
    if (stopped) return;
    const { train, validation } = split;
    forecaster.scaler = fitScaler(train);
    await yieldToEventLoop();
    const r = await trainWithValidation(forecaster, train, validation, {
      epochs: config.epochs,
      batchSize: config.batch_size,
      seed: config.seed + version,
      // ~8 batches per slice: well under a second of blocking on WASM. The fused steps (GPU, or
      // C++ on a worker thread) block only to hand over their inputs, so they take it all at once.
      chunkWindows: forecaster.trainsOffMainThread ? train.n : Math.max(1, Math.ceil((config.batch_size * 8) / (spec.channelIndependent ? spec.channels : 1))),
    });
    // The persistence loss on the same windows, so the gauge shows whether training pays off.
    await yieldToEventLoop();
    if (!forecaster?.scaler) return;
    const persistence = validation.n > 0 ? persistenceLoss(validation, forecaster.scaler.std) : NaN;
    const calibration = forecaster.calibrateOutput(train, validation);
    save();
    lossGauge.set({ model: 'trained' }, r.validationLoss);
    lossGauge.set({ model: 'persistence' }, persistence);
    roundsCounter.inc({ outcome: 'trained' });
    lastRound = { at: savedAt, windows: split.windows, calibration, validationLoss: r.validationLoss, persistenceLoss: persistence, bestEpoch: r.bestEpoch, seconds: r.seconds, samplesPerS: r.samples / r.seconds };
    log.info(lastRound, 'local training round done');
    state = 'idle';
    refreshForecast();
  };

  const serial = (fn: () => Promise<void>) => {
    busy = busy.then(fn).catch((err) => {
      state = 'failed';
      lastError = (err as Error).message;
      roundsCounter.inc({ outcome: 'failed' });
      log.error({ err }, 'training round failed');
    });
    return busy;
  };

  // A job whose start failed (a forced backend that does not load) can never train: it says so
  // as failed, with the reason, instead of retrying rounds on nothing or looking like it starts.
  let startError: Error | undefined;
  const ready = init().catch((err: unknown) => {
    startError = err instanceof Error ? err : new Error(String(err));
    state = 'failed';
    lastError = startError.message;
    clearInterval(trainTimer);
    clearInterval(forecastTimer);
    log.error({ err }, 'training job could not start');
  });
  busy = ready;
  void ready.then(() => (startError ? undefined : serial(trainRound)));
  const trainTimer = setInterval(() => void serial(trainRound), config.train_interval_s * 1000);
  const forecastTimer = setInterval(refreshForecast, config.forecast_interval_s * 1000);
  trainTimer.unref();
  forecastTimer.unref();

  deps.control.handle('predict', async (req) => {
    const h = req.horizon === undefined ? config.horizon : Number(req.horizon);
    if (!Number.isInteger(h) || h < 1 || h > config.horizon) throw new RangeError(`horizon must be an integer from 1 to ${config.horizon}, got ${String(req.horizon)}`);
    await ready;
    if (startError) throw isIcosflError(startError) ? new IcosflError(startError.code, `the training job could not start: ${startError.message}`) : new IcosflError('TRAINER_NOT_RUNNING', `the training job could not start: ${startError.message}`);
    const f = predictNext(h);
    countClamped(clampedCounter, f.clamped);
    return f;
  });

  return {
    async stop() {
      stopped = true;
      clearInterval(trainTimer);
      clearInterval(forecastTimer);
      await busy;
      state = 'stopped';
      forecaster?.dispose();
      forecaster = undefined;
    },
    status() {
      return { enabled: true, running: !stopped && !startError, state, backend, backends, model: spec, version, round, savedAt: savedAt || null, lastRound: lastRound ?? null, lastError: lastError ?? null, ...(startError ? { error: startError.message } : {}) };
    },
    trainNow: () => serial(trainRound),
  };
}

function persistenceLoss(ws: WindowSet, std: number[]): number {
  // Persistence predicts zero change, so its loss is the mean squared standardised change.
  const p = persistenceForecast(ws);
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += ((ws.y[i]! - p[i]!) / std[i % ws.channels]!) ** 2;
  return sum / p.length;
}
