import { IcosflError } from '../../common/errors.js';
import type { ModelKind, TrainerConfig } from './config.js';
import type { DenseLayout } from './fused-step.js';
import { tf, tfl } from './tf.js';

/** Everything that fixes the weight layout; two models with equal specs can exchange weights. */
export interface ModelSpec {
  kind: ModelKind;
  lookback: number;
  horizon: number;
  channels: number;
  hiddenUnits: number;
  /**
   * One univariate model shared by every channel (each channel's forecast sees only its own
   * history) instead of one model over all channels jointly. Absent = false.
   */
  channelIndependent?: boolean;
}

/** The layout the `[trainer]` config asks for, over `channels` metrics. */
export function specFromConfig(config: TrainerConfig, channels: number): ModelSpec {
  return {
    kind: config.model,
    lookback: config.lookback,
    horizon: config.horizon,
    channels,
    hiddenUnits: config.hidden_units,
    channelIndependent: config.channel_independent,
  };
}

/** Equal layouts can exchange weights and saved models. */
export function sameSpec(a: ModelSpec, b: ModelSpec): boolean {
  return (
    a.kind === b.kind && a.lookback === b.lookback && a.horizon === b.horizon && a.channels === b.channels &&
    a.hiddenUnits === b.hiddenUnits && (a.channelIndependent ?? false) === (b.channelIndependent ?? false)
  );
}

/**
 * The forecaster network. It maps standardised inputs to the standardised *change* from the last
 * observed value for every (step ahead, channel) at once, so all steps come from one forward pass.
 *
 * The output layers have no bias: a bias would learn the training period's average drift and
 * keep extrapolating it (measured: it cost memory forecasts on GCD more than it gained). They
 * start at zero: an untrained model predicts "no change", i.e. exactly the
 * persistence baseline, and training can only move it from there.
 * - linear: one dense layer over the flattened lookback (an AR(L) model per output).
 * - mlp: that linear path plus one ReLU hidden layer, summed. Three matmuls per step, which is
 *   what WASM and GPUs run well (DESIGN.md: per-op dispatch dominates tfjs's LSTM).
 * - lstm: ICOS-FL's shape (LSTM + dense head), kept for comparison.
 */
export function buildModel(spec: ModelSpec, seed: number): tfl.LayersModel {
  const { kind, lookback, horizon, hiddenUnits } = spec;
  const channels = spec.channelIndependent ? 1 : spec.channels;
  const outUnits = horizon * channels;
  const zeros = () => tfl.initializers.zeros();
  if (kind === 'lstm') {
    const input = tfl.input({ shape: [lookback, channels] });
    const h = tfl.layers
      .lstm({
        units: hiddenUnits,
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
        recurrentInitializer: tfl.initializers.orthogonal({ seed: seed + 1 }),
      })
      .apply(input) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: outUnits, kernelInitializer: zeros(), useBias: false }).apply(h) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: out });
  }
  // Layer names identify the weights' roles for the fused training steps (denseLayout).
  const input = tfl.input({ shape: [lookback * channels] });
  const linear = tfl.layers.dense({ name: 'linear', units: outUnits, kernelInitializer: zeros(), useBias: false }).apply(input) as tfl.SymbolicTensor;
  if (kind === 'linear') return tfl.model({ inputs: input, outputs: linear });
  const hidden = tfl.layers
    .dense({ name: 'hidden', units: hiddenUnits, activation: 'relu', kernelInitializer: tfl.initializers.heNormal({ seed }) })
    .apply(input) as tfl.SymbolicTensor;
  const head = tfl.layers.dense({ name: 'head', units: outUnits, kernelInitializer: zeros(), useBias: false }).apply(hidden) as tfl.SymbolicTensor;
  const out = tfl.layers.add().apply([linear, head]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/**
 * Where the dense models' weight matrices sit in the flat vector, for the fused training steps
 * (fused-step.ts). Offsets follow the model's own weight order, found by identity, so
 * they stay right whatever order tfjs-layers collects layers in. LSTM models have none.
 */
export function denseLayout(model: tfl.LayersModel, spec: ModelSpec): DenseLayout | undefined {
  if (spec.kind === 'lstm') return undefined;
  const offsets = new Map<unknown, number>();
  let offset = 0;
  for (const w of model.weights) {
    offsets.set(w, offset);
    offset += w.shape.reduce<number>((a, d) => a * (d ?? 1), 1);
  }
  const at = (layer: string, i: number) => {
    const w = model.getLayer(layer).weights[i];
    if (!w || !offsets.has(w)) throw new Error(`model has no weight ${i} in layer '${layer}'`);
    return offsets.get(w)!;
  };
  const channels = spec.channelIndependent ? 1 : spec.channels;
  const hasHidden = spec.kind === 'mlp';
  return {
    inputs: spec.lookback * channels,
    outputs: spec.horizon * channels,
    hidden: hasHidden ? spec.hiddenUnits : 0,
    linearKernel: at('linear', 0),
    hiddenKernel: hasHidden ? at('hidden', 0) : 0,
    hiddenBias: hasHidden ? at('hidden', 1) : 0,
    headKernel: hasHidden ? at('head', 0) : 0,
    size: offset,
  };
}

/** Number of float32 weights: the length of the flat vector that crosses to the crypto layer. */
export function weightCount(model: tfl.LayersModel): number {
  return model.getWeights().reduce((a, w) => a + w.size, 0);
}

/** All weights as ONE Float32Array in `getWeights()` order (the layout is fixed by the spec). */
export function getFlatWeights(model: tfl.LayersModel): Float32Array {
  const weights = model.getWeights();
  const flat = new Float32Array(weights.reduce((a, w) => a + w.size, 0));
  let offset = 0;
  for (const w of weights) {
    // getWeights returns the variables themselves: read them, never dispose them.
    flat.set(w.dataSync() as Float32Array, offset);
    offset += w.size;
  }
  return flat;
}

export function setFlatWeights(model: tfl.LayersModel, flat: Float32Array): void {
  const current = model.getWeights();
  const expected = current.reduce((a, w) => a + w.size, 0);
  if (!(flat instanceof Float32Array)) throw new TypeError('weights must be a Float32Array');
  if (flat.length !== expected) {
    throw new IcosflError('MODEL_INCOMPATIBLE', `weight vector has ${flat.length} values, the model needs ${expected}`, {
      details: { got: flat.length, expected },
    });
  }
  for (let i = 0; i < flat.length; i++) {
    if (!Number.isFinite(flat[i]!)) throw new IcosflError('MODEL_INCOMPATIBLE', `weight vector has a non-finite value at index ${i}`);
  }
  const tensors: tf.Tensor[] = [];
  let offset = 0;
  for (const w of current) {
    tensors.push(tf.tensor(flat.subarray(offset, offset + w.size), w.shape, 'float32'));
    offset += w.size;
  }
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}
