import { IcosflError } from '../../common/errors.js';
import { NativeDenseTrainer } from '../../native/dense-trainer.js';
import { fusedEngine, TFJS_ADAM, type FusedDenseTrainer, type FusedEngine } from './fused-step.js';
import { fitsFusedStep, GpuDenseTrainer } from './gpu/dense-trainer.js';
import { MIX_GRID } from './mixture.js';
import { buildModel, denseLayout, getFlatWeights, setFlatWeights, weightCount, type ModelSpec } from './model.js';
import { permutation, seededRandom } from './rng.js';
import type { Scaler } from './scaler.js';
import { tf, type tfl } from './tf.js';
import { sliceWindows, type WindowSet } from './windows.js';

/**
 * How far outside the training range (in multiples of changeLimit) a window's recent changes may
 * go before it gets persistence: 1× also switched off useful forecasts after ordinary spikes
 * (GCD VMs 1201–1230 cpu: RMSE 1.604 at 1×, 1.571 at 2×; memory MAE was best at 2× too).
 */
const OUT_OF_RANGE = 2;

/** Per-channel output calibration of one machine's forecaster (Forecaster.calibrateOutput). */
export interface OutputCalibration {
  /** Share of the predicted change applied, 0 (persistence) … 1. */
  blend: number[];
  /** Largest |predicted change| allowed, in channel stds. */
  changeLimit: number[];
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Seeds the batch order of this call. */
  seed: number;
}

export interface TrainResult {
  /** Mean training loss (MSE in standardised units) of the last epoch. */
  loss: number;
  samples: number;
  seconds: number;
}

/**
 * A model, its scaler and its optimizer: the unit the daemon trains, the simulation federates
 * and persist.ts saves. Inputs are standardised with the scaler; targets are the change from the
 * last observed value divided by the channel's std (residual target: DESIGN.md's lesson that
 * level targets fail when a machine is busier at test time than in training).
 */
export class Forecaster {
  readonly spec: ModelSpec;
  readonly model: tfl.LayersModel;
  scaler: Scaler | undefined;
  /**
   * How predict() turns the network's output into a forecast on this machine (calibrateOutput).
   * Local to the machine like the scaler, so never part of the federated weight vector;
   * undefined = the raw network output.
   */
  calibration: OutputCalibration | undefined;
  private optimizer: tf.Optimizer | undefined;
  private fused: { engine: FusedEngine; trainer: FusedDenseTrainer } | undefined;
  /** The C++ forward pass of a dense model (nativeForward); null once the addon failed to load. */
  private cppForward: NativeDenseTrainer | null | undefined;
  private readonly learningRate: number;

  constructor(spec: ModelSpec, opts: { seed: number; learningRate: number; scaler?: Scaler }) {
    this.spec = spec;
    this.learningRate = opts.learningRate;
    this.scaler = opts.scaler;
    this.model = buildModel(spec, opts.seed);
  }

  /**
   * Whether train() runs on a fused step (GPU, or C++ on a worker thread): its work then happens
   * off the main thread and only the result is awaited, so callers need not slice epochs to stay
   * responsive.
   */
  get trainsOffMainThread(): boolean {
    return this.fusedTrainer() !== undefined;
  }

  get weightCount(): number {
    return weightCount(this.model);
  }

  getWeights(): Float32Array {
    return getFlatWeights(this.model);
  }

  setWeights(flat: Float32Array): void {
    setFlatWeights(this.model, flat);
  }

  /** Forget Adam's moments (e.g. after replacing the weights with a very different global model). */
  resetOptimizer(): void {
    this.optimizer?.dispose();
    this.optimizer = undefined;
    this.fused?.trainer.resetOptimizer();
  }

  private requireScaler(): Scaler {
    if (!this.scaler) throw new IcosflError('MODEL_INCOMPATIBLE', 'the forecaster has no scaler yet; fit one before training or predicting');
    return this.scaler;
  }

  private checkLayout(ws: WindowSet): void {
    const { lookback, horizon, channels } = this.spec;
    if (ws.lookback !== lookback || ws.channels !== channels || (ws.n > 0 && ws.y.length > 0 && ws.horizon !== horizon)) {
      throw new IcosflError(
        'MODEL_INCOMPATIBLE',
        `windows are ${ws.lookback}×${ws.channels} → ${ws.horizon}, the model needs ${lookback}×${channels} → ${horizon}`,
      );
    }
  }

  /**
   * Inputs [n × L·C] as the change from the window's last value, in channel stds: the model sees
   * the shape of the recent past, not its level, so a machine that is busier at test time than
   * in training is not out of distribution. (Level inputs measured worse than persistence on
   * GCD traces; see the issue note.)
   */
  private scaledInputs(x: Float32Array, n: number): Float32Array {
    const { std } = this.requireScaler();
    const { lookback: L, channels: C } = this.spec;
    const out = new Float32Array(n * L * C);
    for (let w = 0; w < n; w++) {
      const last = (w * L + L - 1) * C;
      for (let t = 0; t < L; t++) {
        for (let c = 0; c < C; c++) {
          const i = (w * L + t) * C + c;
          out[i] = (x[i]! - x[last + c]!) / std[c]!;
        }
      }
    }
    return out;
  }

  /** Residual targets [n × H·C]: (y − last input) / std. */
  private residualTargets(ws: WindowSet): Float32Array {
    const { std } = this.requireScaler();
    const { lookback: L, horizon: H, channels: C } = this.spec;
    const out = new Float32Array(ws.n * H * C);
    for (let w = 0; w < ws.n; w++) {
      const last = (w * L + L - 1) * C;
      for (let h = 0; h < H; h++) {
        for (let c = 0; c < C; c++) {
          const i = (w * H + h) * C + c;
          out[i] = (ws.y[i]! - ws.x[last + c]!) / std[c]!;
        }
      }
    }
    return out;
  }

  /**
   * [n × steps × C] sample-major values as model rows: unchanged ([n] rows of steps·C), or
   * [n·C] rows of `steps` values when channels are independent (one row per window and channel).
   */
  private modelRows(data: Float32Array, n: number, steps: number): Float32Array {
    return this.spec.channelIndependent ? swapLastAxes(data, n, steps, this.spec.channels) : data;
  }

  /**
   * scaledInputs already in model rows (modelRows of them), in one pass: the same values with no
   * intermediate array. Training's host-side preparation is most of a GPU round's time.
   */
  private inputRows(x: Float32Array, n: number): Float32Array {
    if (!this.spec.channelIndependent) return this.scaledInputs(x, n);
    const { std } = this.requireScaler();
    const { lookback: L, channels: C } = this.spec;
    const out = new Float32Array(n * L * C);
    for (let w = 0; w < n; w++) {
      const base = w * L * C;
      for (let c = 0; c < C; c++) {
        const last = x[base + (L - 1) * C + c]!;
        const s = std[c]!;
        const row = base + c * L;
        for (let t = 0; t < L; t++) out[row + t] = (x[base + t * C + c]! - last) / s;
      }
    }
    return out;
  }

  /** Model rows (modelRows of the inputs) as the tensor the network takes. */
  private inputTensor(rows: Float32Array, count: number): tf.Tensor {
    const { kind, lookback: L } = this.spec;
    const width = rows.length / count;
    if (kind === 'lstm') return tf.tensor3d(rows, [count, L, width / L]);
    return tf.tensor2d(rows, [count, width]);
  }

  /**
   * What the network is fitted to: its input rows and residual targets for these windows, in model
   * rows (one per window, or one per window and channel when channels are independent). train()
   * uses them, and so does the closed-form fit of the output layers (ridge.ts).
   */
  trainingRows(ws: WindowSet): { inputs: Float32Array; targets: Float32Array; rows: number } {
    this.checkLayout(ws);
    return {
      inputs: this.inputRows(ws.x, ws.n),
      targets: this.modelRows(this.residualTargets(ws), ws.n, this.spec.horizon),
      rows: this.spec.channelIndependent ? ws.n * this.spec.channels : ws.n,
    };
  }

  /**
   * Minibatch Adam over the windows, on the fused step when an engine is set and the model is
   * dense (fused-step.ts), else on tfjs's active backend. All take the same seeded batch order
   * and the same Adam; losses are read back once per call, not per batch (on a GPU every read is
   * a sync).
   */
  async train(ws: WindowSet, opts: TrainOptions): Promise<TrainResult> {
    this.checkLayout(ws);
    if (ws.n < 1) throw new RangeError('train needs at least one window');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    const started = performance.now();
    const { inputs, targets, rows } = this.trainingRows(ws);
    const random = seededRandom(opts.seed);
    const orders = Array.from({ length: opts.epochs }, () => permutation(rows, random));
    const fused = this.fusedTrainer();
    const loss = fused
      ? await this.trainFused(fused, inputs, targets, rows, orders, opts.batchSize)
      : this.trainOnTfjs(inputs, targets, rows, orders, opts.batchSize);
    if (!Number.isFinite(loss)) {
      throw new IcosflError('TRAINING_FAILED', `training loss became ${loss}`, { details: { windows: ws.n } });
    }
    return { loss, samples: ws.n * opts.epochs, seconds: (performance.now() - started) / 1000 };
  }

  /** The last epoch's mean batch loss. */
  private trainOnTfjs(inputs: Float32Array, targets: Float32Array, rows: number, orders: Int32Array[], batchSize: number): number {
    this.optimizer ??= tf.train.adam(this.learningRate);
    const optimizer = this.optimizer;
    const xAll = this.inputTensor(inputs, rows);
    const tAll = tf.tensor2d(targets, [rows, targets.length / rows]);
    let lastEpochLoss = NaN;
    try {
      for (const [epoch, order] of orders.entries()) {
        const losses: tf.Scalar[] = [];
        for (let start = 0; start < rows; start += batchSize) {
          const idx = tf.tensor1d(order.subarray(start, Math.min(rows, start + batchSize)), 'int32');
          const cost = optimizer.minimize(() => {
            const xb = tf.gather(xAll, idx);
            const tb = tf.gather(tAll, idx);
            const pred = this.model.apply(xb, { training: true }) as tf.Tensor;
            return tf.losses.meanSquaredError(tb, pred) as tf.Scalar;
          }, true);
          idx.dispose();
          if (cost) losses.push(cost);
        }
        if (epoch === orders.length - 1) {
          const mean = tf.tidy(() => tf.mean(tf.stack(losses)));
          lastEpochLoss = mean.dataSync()[0]!;
          mean.dispose();
        }
        tf.dispose(losses);
      }
    } finally {
      xAll.dispose();
      tAll.dispose();
    }
    return lastEpochLoss;
  }

  private async trainFused(fused: FusedDenseTrainer, inputs: Float32Array, targets: Float32Array, rows: number, orders: Int32Array[], batchSize: number): Promise<number> {
    const order = new Uint32Array(rows * orders.length);
    orders.forEach((o, e) => order.set(o, e * rows));
    const r = await fused.train(this.getWeights(), { x: inputs, t: targets, rows, order, epochs: orders.length, batchSize, learningRate: this.learningRate });
    if (!r.weights.every(Number.isFinite)) return NaN;
    this.setWeights(r.weights);
    return r.epochLosses[orders.length - 1]!;
  }

  /**
   * The C++ forward pass (native/dense-trainer.ts) while a fused engine trains this dense model:
   * validation losses every epoch and forecasts then skip tfjs. tfjs's WASM predict took 12–31 ms
   * for the default job's 1,586 validation rows here, most of a round once training was fused;
   * the C++ pass is train()'s own forward and takes about 1 ms. Undefined (tfjs predicts) without
   * a fused engine (a backend forced to wasm or cpu), for an LSTM, or where the addon cannot load.
   */
  private nativeForward(): NativeDenseTrainer | undefined {
    if (this.cppForward === null || !fusedEngine()) return undefined;
    if (!this.cppForward) {
      const layout = denseLayout(this.model, this.spec);
      if (!layout) return undefined;
      try {
        this.cppForward = new NativeDenseTrainer(layout, TFJS_ADAM);
      } catch {
        this.cppForward = null;
        return undefined;
      }
    }
    return this.cppForward;
  }

  /**
   * The fused trainer for this model on the current engine, created on first use and replaced
   * when the engine changes; undefined when training runs on tfjs (no engine set, an LSTM, which
   * has no fused step, or a model whose Adam moments exceed the GPU's storage binding limit).
   */
  private fusedTrainer(): FusedDenseTrainer | undefined {
    const engine = fusedEngine();
    if (this.fused && this.fused.engine !== engine) {
      this.fused.trainer.dispose();
      this.fused = undefined;
    }
    if (!engine) return undefined;
    if (!this.fused) {
      const layout = denseLayout(this.model, this.spec);
      if (!layout) return undefined;
      if (engine.kind === 'webgpu') {
        if (!fitsFusedStep(layout, engine.device.limits)) return undefined;
        this.fused = { engine, trainer: new GpuDenseTrainer(engine.device, layout, TFJS_ADAM) };
      } else {
        this.fused = { engine, trainer: new NativeDenseTrainer(layout, TFJS_ADAM) };
      }
    }
    return this.fused.trainer;
  }

  /** Raw standardised outputs [n × H × C], batched to bound memory. */
  private forward(x: Float32Array, n: number): Float32Array {
    const native = this.nativeForward();
    if (native) {
      const { channels: C, horizon: H } = this.spec;
      const values = native.forward(this.getWeights(), this.inputRows(x, n), this.spec.channelIndependent ? n * C : n);
      return this.spec.channelIndependent ? swapLastAxes(values, n, C, H) : values;
    }
    const outW = this.spec.horizon * this.spec.channels;
    const out = new Float32Array(n * outW);
    const inW = this.spec.lookback * this.spec.channels;
    const BATCH = 4096;
    for (let start = 0; start < n; start += BATCH) {
      const m = Math.min(BATCH, n - start);
      const rows = this.inputRows(x.subarray(start * inW, (start + m) * inW), m);
      const count = this.spec.channelIndependent ? m * this.spec.channels : m;
      const result = tf.tidy(() => this.model.predict(this.inputTensor(rows, count)) as tf.Tensor);
      const values = result.dataSync() as Float32Array;
      result.dispose();
      out.set(this.spec.channelIndependent ? swapLastAxes(values, m, this.spec.channels, this.spec.horizon) : values, start * outW);
    }
    return out;
  }

  /** Forecasts in original units, [n × horizon × channels]; x is [n × lookback × channels]. */
  predict(x: Float32Array, n = x.length / (this.spec.lookback * this.spec.channels)): Float32Array {
    if (!Number.isInteger(n) || x.length !== n * this.spec.lookback * this.spec.channels) {
      throw new RangeError(`predict: x has ${x.length} values, expected n × ${this.spec.lookback} × ${this.spec.channels}`);
    }
    const { std } = this.requireScaler();
    const { lookback: L, horizon: H, channels: C } = this.spec;
    const out = this.calibratedChange(x, n);
    for (let w = 0; w < n; w++) {
      const last = (w * L + L - 1) * C;
      for (let h = 0; h < H; h++) {
        for (let c = 0; c < C; c++) {
          const i = (w * H + h) * C + c;
          out[i] = x[last + c]! + out[i]! * std[c]!;
        }
      }
    }
    return out;
  }

  /**
   * Standardised predicted change [n × H × C] after `calibration`: a window whose recent changes
   * on a channel exceed anything in training (changeLimit) gets persistence on that channel,
   * other predictions are clipped to ±changeLimit and scaled by the channel's blend.
   */
  private calibratedChange(x: Float32Array, n: number): Float32Array {
    const out = this.forward(x, n);
    const cal = this.calibration;
    if (!cal) return out;
    const { lookback: L, horizon: H, channels: C } = this.spec;
    const { std } = this.requireScaler();
    for (let w = 0; w < n; w++) {
      const last = (w * L + L - 1) * C;
      for (let c = 0; c < C; c++) {
        const limit = cal.changeLimit[c]!;
        let outside = false;
        for (let t = 0; t < L && !outside; t++) outside = Math.abs(x[(w * L + t) * C + c]! - x[last + c]!) / std[c]! > OUT_OF_RANGE * limit;
        for (let h = 0; h < H; h++) {
          const i = (w * H + h) * C + c;
          out[i] = outside ? 0 : cal.blend[c]! * Math.min(limit, Math.max(-limit, out[i]!));
        }
      }
    }
    return out;
  }

  /**
   * Fits `calibration` for this machine after training (or after a new global model):
   * - changeLimit: per channel, the largest change from the last value seen in the training
   *   windows (in stds). A forecast never moves further than that, and a window whose recent
   *   changes go beyond OUT_OF_RANGE × that gets persistence on that channel. Why: a machine whose
   *   memory was flat in training and then collapses (GCD VM 5932162535_1: 51.4 % ± 0.1 for 19
   *   hours, then 29 %) feeds the network changes hundreds of stds outside anything it learned
   *   from, and a piecewise-linear network extrapolates them into forecasts far worse than
   *   persistence.
   * - blend: per channel, the share α ∈ {0, 0.1, …, 1} of the (clipped) predicted change with the
   *   least squared error on the validation windows among the shares whose absolute error there
   *   is no worse than persistence's. Forecasts are judged on RMSE and MAE, and on near-flat
   *   series an MSE-trained model can win RMSE while losing MAE by moving a little on every flat
   *   step; this keeps the RMSE gain where MAE allows it. (A sum of the two ratios, tried first,
   *   gave up 10 % RMSE on NAB's spiky CPU series for 3 % MAE.) α = 0 is persistence, so a
   *   model that does not pay off on a channel is switched off there; ties go to the smaller α,
   *   and a channel flat on validation gets α = 0.
   */
  calibrateOutput(train: WindowSet, validation: WindowSet): OutputCalibration {
    this.checkLayout(train);
    this.checkLayout(validation);
    const C = this.spec.channels;
    // Inputs and targets are both changes from the window's last value: the limit covers both.
    const changeLimit = new Array<number>(C).fill(0);
    for (const seen of [this.residualTargets(train), this.scaledInputs(train.x, train.n)]) {
      for (let i = 0; i < seen.length; i++) changeLimit[i % C] = Math.max(changeLimit[i % C]!, Math.abs(seen[i]!));
    }
    this.calibration = { blend: new Array<number>(C).fill(1), changeLimit };
    if (validation.n < 1) return this.calibration;
    const change = this.calibratedChange(validation.x, validation.n);
    const target = this.residualTargets(validation);
    const grid = MIX_GRID;
    const blend: number[] = [];
    for (let c = 0; c < C; c++) {
      const sse = new Float64Array(grid.length);
      const sae = new Float64Array(grid.length);
      for (let i = c; i < target.length; i += C) {
        for (const [k, a] of grid.entries()) {
          const e = a * change[i]! - target[i]!;
          sse[k]! += e * e;
          sae[k]! += Math.abs(e);
        }
      }
      if (sse[0] === 0 || sae[0] === 0) {
        blend.push(0);
        continue;
      }
      // Least squared error among the shares whose absolute error does not exceed persistence's.
      let best = 0;
      for (let k = 1; k < grid.length; k++) if (sae[k]! <= sae[0]! && sse[k]! < sse[best]!) best = k;
      blend.push(grid[best]!);
    }
    this.calibration = { blend, changeLimit };
    return this.calibration;
  }

  /** Validation loss: MSE of standardised residuals, the quantity training minimises. */
  loss(ws: WindowSet): number {
    const e = this.squaredErrors(ws);
    return e.model / e.count;
  }

  /**
   * loss(ws) over persistence's loss on the same windows (a forecast of no change): 1 = no better
   * than persistence. Unlike the loss, it compares across machines whatever their volatility, so
   * pooled model selection can average it (coordinator/strategy/model-selection.ts). Infinity
   * when the windows never change and the model predicts a change; NaN for an empty set. Over
   * every channel, or over `channel` alone (a per-channel head's score, ridge.ts).
   */
  relativeLoss(ws: WindowSet, channel?: number): number {
    const e = this.squaredErrors(ws, channel);
    if (e.count === 0) return NaN;
    if (e.persistence > 0) return e.model / e.persistence;
    return e.model > 0 ? Infinity : 1;
  }

  /**
   * Sums of squared standardised residual errors of the model and of persistence (which predicts
   * 0), over every channel or over one.
   */
  private squaredErrors(ws: WindowSet, channel?: number): { model: number; persistence: number; count: number } {
    this.checkLayout(ws);
    const C = this.spec.channels;
    if (channel !== undefined && !(Number.isInteger(channel) && channel >= 0 && channel < C)) {
      throw new RangeError(`channel must be an integer in [0, ${C}), got ${channel}`);
    }
    if (ws.n < 1) return { model: NaN, persistence: NaN, count: 0 };
    const pred = this.forward(ws.x, ws.n);
    const target = this.residualTargets(ws);
    let model = 0;
    let persistence = 0;
    let count = 0;
    for (let i = channel ?? 0; i < pred.length; i += channel === undefined ? 1 : C) {
      model += (pred[i]! - target[i]!) ** 2;
      persistence += target[i]! ** 2;
      count++;
    }
    return { model, persistence, count };
  }

  /**
   * The model's sums of squared standardised residual errors per output, [horizon × channels]
   * (step h, channel c at h·C + c), before calibration: what a per-step choice ranks (ridge.ts
   * personalHeads). All zero for an empty set.
   */
  outputErrors(ws: WindowSet): Float64Array {
    this.checkLayout(ws);
    const width = this.spec.horizon * this.spec.channels;
    const out = new Float64Array(width);
    if (ws.n < 1) return out;
    const pred = this.forward(ws.x, ws.n);
    const target = this.residualTargets(ws);
    for (let i = 0; i < pred.length; i++) out[i % width]! += (pred[i]! - target[i]!) ** 2;
    return out;
  }

  dispose(): void {
    this.optimizer?.dispose();
    this.optimizer = undefined;
    this.fused?.trainer.dispose();
    this.fused = undefined;
    this.cppForward?.dispose();
    this.cppForward = undefined;
    this.model.dispose();
  }
}

/** [n × A × B] → [n × B × A] (channel-independent rows ↔ the ring's sample-major layout). */
function swapLastAxes(a: Float32Array, n: number, A: number, B: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let w = 0; w < n; w++) {
    const base = w * A * B;
    for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) out[base + j * A + i] = a[base + i * B + j]!;
  }
  return out;
}

export interface ValidatedTraining {
  trainLoss: number;
  /** The best epoch's validation loss (its validationScore when one was given); likewise the initial one. */
  validationLoss: number;
  initialValidationLoss: number;
  /** 0 when no epoch beat the starting weights (which are then kept). */
  bestEpoch: number;
  samples: number;
  seconds: number;
}

/**
 * Epochs with the best validation loss kept: small machines overfit, and a model worse than
 * where it started (persistence, for a new model) is never the one returned.
 *
 * With `chunkWindows` (the daemon) each epoch runs in chunks of that many windows, taken in a
 * seeded random order, with a turn of the event loop between them, so the control socket and the
 * metrics endpoint stay responsive during a round; validation losses are chunked the same way.
 *
 * With `validationScore`, that score is what the epochs are ranked by instead of the loss on
 * `validation`: training pooled over several machines passes their mean relative loss.
 */
export async function trainWithValidation(
  f: Forecaster,
  train: WindowSet,
  validation: WindowSet,
  opts: TrainOptions & { chunkWindows?: number; validationScore?: () => number },
): Promise<ValidatedTraining> {
  const started = performance.now();
  const chunkWindows = opts.chunkWindows ?? Math.max(1, train.n, validation.n);
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  const score = opts.validationScore;
  const validationLoss = score ? async () => score() : () => lossInChunks(f, validation, chunkWindows, turn);
  const initialValidationLoss = await validationLoss();
  let best = { loss: initialValidationLoss, weights: f.getWeights(), epoch: 0 };
  let trainLoss = NaN;
  const chunks = Math.max(1, Math.ceil(train.n / chunkWindows));
  const random = seededRandom(opts.seed);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    let sum = 0;
    for (const c of chunks === 1 ? [0] : permutation(chunks, random)) {
      const part = chunks === 1 ? train : sliceWindows(train, c * chunkWindows, (c + 1) * chunkWindows);
      sum += (await f.train(part, { ...opts, epochs: 1, seed: opts.seed + epoch * chunks + c })).loss * part.n;
      if (chunks > 1) await turn();
    }
    trainLoss = sum / train.n;
    const v = await validationLoss();
    // Without validation windows every epoch counts as an improvement.
    if (validation.n === 0 || v < best.loss) best = { loss: v, weights: f.getWeights(), epoch };
  }
  if (best.epoch !== opts.epochs) f.setWeights(best.weights);
  return { trainLoss, validationLoss: best.loss, initialValidationLoss, bestEpoch: best.epoch, samples: train.n * opts.epochs, seconds: (performance.now() - started) / 1000 };
}

/**
 * f.loss(ws) computed `chunkWindows` windows at a time with `turn()` after each chunk. Every
 * window has the same number of outputs, so the mean of the chunk means weighted by their
 * window counts is the mean over all windows (NaN for an empty set, like f.loss).
 */
async function lossInChunks(f: Forecaster, ws: WindowSet, chunkWindows: number, turn: () => Promise<unknown>): Promise<number> {
  if (ws.n <= chunkWindows) return f.loss(ws);
  let sum = 0;
  for (let start = 0; start < ws.n; start += chunkWindows) {
    const part = sliceWindows(ws, start, Math.min(ws.n, start + chunkWindows));
    sum += f.loss(part) * part.n;
    await turn();
  }
  return sum / ws.n;
}
