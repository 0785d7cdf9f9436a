import { IcosflError } from '../../common/errors.js';
import { buildModel, getFlatWeights, setFlatWeights, weightCount, type ModelSpec } from './model.js';
import { permutation, seededRandom } from './rng.js';
import type { Scaler } from './scaler.js';
import { tf, type tfl } from './tf.js';
import { sliceWindows, type WindowSet } from './windows.js';

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
  private optimizer: tf.Optimizer | undefined;
  private readonly learningRate: number;

  constructor(spec: ModelSpec, opts: { seed: number; learningRate: number; scaler?: Scaler }) {
    this.spec = spec;
    this.learningRate = opts.learningRate;
    this.scaler = opts.scaler;
    this.model = buildModel(spec, opts.seed);
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

  /** [n × L × C] inputs as model rows: the same, or [n·C × L] when channels are independent. */
  private inputTensor(data: Float32Array, n: number): tf.Tensor {
    const { kind, lookback: L, channels: C } = this.spec;
    if (this.spec.channelIndependent) {
      const rows = swapLastAxes(data, n, L, C);
      return kind === 'lstm' ? tf.tensor3d(rows, [n * C, L, 1]) : tf.tensor2d(rows, [n * C, L]);
    }
    return kind === 'lstm' ? tf.tensor3d(data, [n, L, C]) : tf.tensor2d(data, [n, L * C]);
  }

  /** [n × H × C] targets as model rows (see inputTensor). */
  private targetTensor(data: Float32Array, n: number): tf.Tensor2D {
    const { horizon: H, channels: C } = this.spec;
    return this.spec.channelIndependent ? tf.tensor2d(swapLastAxes(data, n, H, C), [n * C, H]) : tf.tensor2d(data, [n, H * C]);
  }

  /**
   * Minibatch Adam over the windows. The whole set is uploaded once and batches are gathered on
   * the backend; losses are read back once per call, not per batch (every read is a GPU sync).
   */
  train(ws: WindowSet, opts: TrainOptions): TrainResult {
    this.checkLayout(ws);
    if (ws.n < 1) throw new RangeError('train needs at least one window');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    const started = performance.now();
    this.optimizer ??= tf.train.adam(this.learningRate);
    const optimizer = this.optimizer;
    const random = seededRandom(opts.seed);
    const xAll = this.inputTensor(this.scaledInputs(ws.x, ws.n), ws.n);
    const tAll = this.targetTensor(this.residualTargets(ws), ws.n);
    const rows = tAll.shape[0];
    let lastEpochLoss = NaN;
    try {
      for (let epoch = 0; epoch < opts.epochs; epoch++) {
        const order = permutation(rows, random);
        const losses: tf.Scalar[] = [];
        for (let start = 0; start < rows; start += opts.batchSize) {
          const idx = tf.tensor1d(order.subarray(start, Math.min(rows, start + opts.batchSize)), 'int32');
          const cost = optimizer.minimize(() => {
            const xb = tf.gather(xAll, idx);
            const tb = tf.gather(tAll, idx);
            const pred = this.model.apply(xb, { training: true }) as tf.Tensor;
            return tf.losses.meanSquaredError(tb, pred) as tf.Scalar;
          }, true);
          idx.dispose();
          if (cost) losses.push(cost);
        }
        if (epoch === opts.epochs - 1) {
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
    if (!Number.isFinite(lastEpochLoss)) {
      throw new IcosflError('TRAINING_FAILED', `training loss became ${lastEpochLoss}`, { details: { windows: ws.n } });
    }
    return { loss: lastEpochLoss, samples: ws.n * opts.epochs, seconds: (performance.now() - started) / 1000 };
  }

  /** Raw standardised outputs [n × H × C], batched to bound memory. */
  private forward(x: Float32Array, n: number): Float32Array {
    const outW = this.spec.horizon * this.spec.channels;
    const out = new Float32Array(n * outW);
    const inW = this.spec.lookback * this.spec.channels;
    const BATCH = 4096;
    for (let start = 0; start < n; start += BATCH) {
      const m = Math.min(BATCH, n - start);
      const scaled = this.scaledInputs(x.subarray(start * inW, (start + m) * inW), m);
      const result = tf.tidy(() => this.model.predict(this.inputTensor(scaled, m)) as tf.Tensor);
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
    const out = this.forward(x, n);
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

  /** Validation loss: MSE of standardised residuals, the quantity training minimises. */
  loss(ws: WindowSet): number {
    this.checkLayout(ws);
    if (ws.n < 1) return NaN;
    const pred = this.forward(ws.x, ws.n);
    const target = this.residualTargets(ws);
    let sum = 0;
    for (let i = 0; i < pred.length; i++) sum += (pred[i]! - target[i]!) ** 2;
    return sum / pred.length;
  }

  dispose(): void {
    this.resetOptimizer();
    this.model.dispose();
  }
}

/**
 * Epochs with the best validation loss kept: small machines overfit, and a model worse than
 * where it started (persistence) is never the one returned.
 */
export function trainWithValidation(
  f: Forecaster,
  train: WindowSet,
  validation: WindowSet,
  opts: TrainOptions,
): { trainLoss: number; validationLoss: number; initialValidationLoss: number; bestEpoch: number; samples: number; seconds: number } {
  const started = performance.now();
  const initialValidationLoss = f.loss(validation);
  let best = { loss: initialValidationLoss, weights: f.getWeights(), epoch: 0 };
  let trainLoss = NaN;
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    trainLoss = f.train(train, { ...opts, epochs: 1, seed: opts.seed + epoch }).loss;
    const v = f.loss(validation);
    // Without validation windows every epoch counts as an improvement.
    if (validation.n === 0 || v < best.loss) best = { loss: v, weights: f.getWeights(), epoch };
  }
  if (best.epoch !== opts.epochs) f.setWeights(best.weights);
  return {
    trainLoss,
    validationLoss: best.loss,
    initialValidationLoss,
    bestEpoch: best.epoch,
    samples: train.n * opts.epochs,
    seconds: (performance.now() - started) / 1000,
  };
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

/**
 * trainWithValidation for the daemon: the same epochs and best-epoch rule, but each epoch runs
 * in chunks of `chunkWindows` (taken in a seeded random order) with a turn of the event loop
 * between them, so the control socket and the metrics endpoint stay responsive during a round.
 */
export async function trainWithValidationAsync(
  f: Forecaster,
  train: WindowSet,
  validation: WindowSet,
  opts: TrainOptions & { chunkWindows: number },
): Promise<ReturnType<typeof trainWithValidation>> {
  const started = performance.now();
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  // The validation loss is taken in chunks too: one forward pass over every validation window
  // was the longest synchronous stretch left in a round.
  const initialValidationLoss = await lossInChunks(f, validation, opts.chunkWindows, turn);
  let best = { loss: initialValidationLoss, weights: f.getWeights(), epoch: 0 };
  let trainLoss = NaN;
  const chunks = Math.max(1, Math.ceil(train.n / opts.chunkWindows));
  const random = seededRandom(opts.seed);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    let sum = 0;
    for (const c of permutation(chunks, random)) {
      const part = sliceWindows(train, c * opts.chunkWindows, (c + 1) * opts.chunkWindows);
      sum += f.train(part, { ...opts, epochs: 1, seed: opts.seed + epoch * chunks + c }).loss * part.n;
      await turn();
    }
    trainLoss = sum / train.n;
    const v = await lossInChunks(f, validation, opts.chunkWindows, turn);
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
  if (ws.n < 1) return f.loss(ws);
  let sum = 0;
  for (let start = 0; start < ws.n; start += chunkWindows) {
    const part = sliceWindows(ws, start, Math.min(ws.n, start + chunkWindows));
    sum += f.loss(part) * part.n;
    await turn();
  }
  return sum / ws.n;
}
