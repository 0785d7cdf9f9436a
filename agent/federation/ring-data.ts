import type { FederationModel } from '../../common/protocol/federation-model.js';
import { buildWindows, chronologicalSplit, type WindowSet } from '../trainer/windows.js';
import type { ParticipantData, SessionWindows } from './participant.js';

/** What the federation needs from the native ring (native/ring.ts MetricRing satisfies it). */
export interface RingReader {
  latest(n: number): { timestamps: Float64Array; values: Float32Array };
  readonly size: number;
}

/**
 * A daemon's windows for the federation: the ring's newest samples, in the federation's metrics
 * (a subset of the ring's channels, in the model's order), cut into windows with the same
 * builder the simulation uses. Only the newest `maxWindows` windows are read, so a round's memory
 * is bounded however large the ring is.
 */
export class RingFederationData implements ParticipantData {
  constructor(
    private readonly ring: RingReader,
    private readonly channelNames: readonly string[],
  ) {}

  /** Column of each model metric in the ring, or the first one the ring lacks. */
  columns(m: FederationModel): number[] | { missing: string } {
    const cols: number[] = [];
    for (const name of m.metrics) {
      const i = this.channelNames.indexOf(name);
      if (i < 0) return { missing: name };
      cols.push(i);
    }
    return cols;
  }

  /** The newest `samples` samples in the model's channels. */
  recent(m: FederationModel, samples: number): { timestamps: Float64Array; values: Float32Array } | { missing: string } {
    const cols = this.columns(m);
    if (!Array.isArray(cols)) return cols;
    const { timestamps, values } = this.ring.latest(samples);
    const C = this.channelNames.length;
    const n = timestamps.length;
    const out = new Float32Array(n * cols.length);
    for (let t = 0; t < n; t++) for (const [j, c] of cols.entries()) out[t * cols.length + j] = values[t * C + c]!;
    return { timestamps, values: out };
  }

  sessionWindows(m: FederationModel): SessionWindows | { state: 'waiting-for-data' | 'incompatible'; reason: string; windows: number } {
    const got = this.recent(m, m.maxWindows + m.lookback + m.horizon - 1);
    if ('missing' in got) {
      return { state: 'incompatible', reason: `the federation's model needs metric '${got.missing}', which this agent does not sample (sampler.metrics)`, windows: 0 };
    }
    const ws: WindowSet = buildWindows(got.values, m.metrics.length, m.lookback, m.horizon);
    const { train, validation } = chronologicalSplit(ws, m.validationFraction);
    if (train.n < m.minWindows || validation.n < 1) {
      return { state: 'waiting-for-data', reason: `${train.n} training windows; the federation's model needs ${m.minWindows} and a validation tail`, windows: train.n };
    }
    return { train, validation };
  }
}
