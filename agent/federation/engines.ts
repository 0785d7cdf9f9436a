import { modelConfigHash, type FederationModel } from '../../common/protocol/federation-model.js';
import { Forecaster } from '../trainer/forecaster.js';
import type { ModelSpec } from '../trainer/model.js';
import { randomiseHiddenBias } from '../trainer/ridge.js';

/**
 * The models an agent computes with: the federated layout and, when the federation has a ridge
 * model, the random-feature one. A participant keeps its own weights, scaler and calibrations
 * and loads them into an engine for each piece of work, so one set of engines can serve every
 * agent of a simulation (one process, one tfjs) as it serves the one agent of a daemon.
 * `exclusive` serialises that work: two agents never interleave on one engine.
 */
export interface Engines {
  readonly spec: ModelSpec;
  /** modelConfigHash of the configuration they were built for: an announcement of another is refused. */
  readonly configHash: string;
  readonly model: Forecaster;
  readonly ridge: Forecaster | undefined;
  /** The seeded initial weights (FedAvg's round 0), the same on every agent. */
  readonly initial: Float32Array;
  exclusive<T>(fn: () => Promise<T> | T): Promise<T>;
  dispose(): void;
}

export function specOf(m: FederationModel): ModelSpec {
  return { kind: m.kind, lookback: m.lookback, horizon: m.horizon, channels: m.metrics.length, hiddenUnits: m.hiddenUnits, channelIndependent: m.channelIndependent };
}

export function createEngines(m: FederationModel): Engines {
  const spec = specOf(m);
  const model = new Forecaster(spec, { seed: m.seed, learningRate: m.learningRate });
  let ridge: Forecaster | undefined;
  if (m.ridgeFeatures > 0 && m.kind !== 'lstm') {
    ridge = new Forecaster({ ...spec, kind: 'mlp', hiddenUnits: m.ridgeFeatures }, { seed: m.seed, learningRate: m.learningRate });
    randomiseHiddenBias(ridge, m.seed);
  }
  let chain: Promise<unknown> = Promise.resolve();
  return {
    spec,
    configHash: modelConfigHash(m),
    model,
    ridge,
    initial: model.getWeights(),
    exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
      const run = chain.then(fn);
      chain = run.catch(() => undefined);
      return run;
    },
    dispose() {
      model.dispose();
      ridge?.dispose();
    },
  };
}
