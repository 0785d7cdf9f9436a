import { deriveParams, type CoordinatorBundle } from '../../common/crypto/index.js';
import { checkFrame } from '../../common/crypto/aggregate.js';
import { parseFrame, KIND_UPDATE } from '../../common/crypto/wire.js';
import type { Codec } from '../../common/protocol/messages.js';
import { EncryptedFedAvgRound } from './ckks-fedavg.js';
import { fedAvg } from './fedavg.js';

/**
 * How a round's updates become its global model, for the round runner: a pure check of one
 * update body (the reducer refuses a bad one before it is counted, so one hostile agent cannot
 * spoil a round's sum later) and the sum itself. Two strategies: CKKS (the coordinator adds
 * ciphertexts and never holds a key) and plaintext FedAvg, which sees every agent's weights and
 * exists only to measure what encryption costs (round-scale benchmark, simulate --plaintext).
 */
export interface AggregationStrategy {
  readonly codec: Codec;
  /** Why the body is refused, or undefined. `params`: the layout's length; `samples`: the n_k its message claims. */
  checkBody(body: Uint8Array, params: number, samples: number): string | undefined;
  /** Why a shard's partial sum is refused (it must sum exactly `clients` updates of Σ n_k = `samples`), or undefined. */
  checkPartial(body: Uint8Array, params: number, clients: number, samples: number): string | undefined;
  /** Sums the updates (already checked), given in a fixed order so the bytes never depend on arrival order. */
  aggregate(updates: { body: Uint8Array; samples: number }[], params: number): { bytes: Uint8Array; clients: number; totalSamples: number };
}

export function ckksStrategy(bundle: CoordinatorBundle): AggregationStrategy {
  const d = deriveParams(bundle.params);
  return {
    codec: 'ckks',
    checkBody(body, params, samples) {
      try {
        const h = parseFrame(body, d, params);
        if (h.kind !== KIND_UPDATE) return 'an aggregate frame where one agent\'s update belongs';
        if (h.totalSamples !== samples) return `the frame carries n_k = ${h.totalSamples}, the message claims ${samples}`;
        // Every residue below q: the adder would refuse it later, in the middle of the round's sum.
        checkFrame(d, body, params);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
    checkPartial(body, params, clients, samples) {
      try {
        const h = checkFrame(d, body, params);
        if (h.kind === KIND_UPDATE) return "one agent's update where a partial sum belongs";
        if (h.clients !== clients || h.totalSamples !== samples) return `the frame sums ${h.clients} clients and Σ n_k = ${h.totalSamples}, the message lists ${clients} agents and Σ n_k = ${samples}`;
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
    aggregate(updates, params) {
      const round = new EncryptedFedAvgRound(bundle, { paramCount: params });
      for (const u of updates) round.add(u.body);
      return { bytes: round.result(), clients: round.clients, totalSamples: round.totalSamples };
    },
  };
}

/** Plaintext bodies: the weights w_k as float32 little-endian (not multiplied by n_k). */
export function plaintextStrategy(): AggregationStrategy {
  const asFloats = (body: Uint8Array) => {
    const copy = new Uint8Array(body);
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  };
  return {
    codec: 'plaintext',
    checkBody(body, params) {
      if (body.length !== params * 4) return `${body.length} bytes; the layout has ${params} float32 parameters (${params * 4} bytes)`;
      const w = asFloats(body);
      for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i]!)) return `parameter ${i} is ${w[i]}`;
      return undefined;
    },
    checkPartial() {
      // A plaintext partial would be an average, not a sum: sharding needs CKKS (the config refuses it).
      return 'plaintext federations take no partial sums';
    },
    aggregate(updates) {
      const avg = fedAvg(updates.map((u) => ({ weights: asFloats(u.body), samples: u.samples })));
      return { bytes: new Uint8Array(avg.buffer, avg.byteOffset, avg.byteLength), clients: updates.length, totalSamples: updates.reduce((a, u) => a + u.samples, 0) };
    },
  };
}
