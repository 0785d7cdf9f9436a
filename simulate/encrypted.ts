import { DEFAULT_MAX_ROUND_SAMPLES } from '../common/crypto/index.js';
import type { AgentCodec } from '../agent/federation/codec.js';
import { fedAvg, type ClientUpdate } from '../coordinator/strategy/fedavg.js';

/**
 * A witness of the CKKS error in a simulation: it sees every update an agent encodes and, when
 * the round's global is decoded, compares it with the plaintext FedAvg of those updates (the
 * rounds of one simulation run one after another, so the updates of the global being decoded
 * are exactly those encoded since the last decode of that layout).
 */
export function ckksWitness(): { wrap: (c: AgentCodec) => AgentCodec; maxAbsError: () => number } {
  const pending = new Map<number, ClientUpdate[]>();
  let maxAbsError = 0;
  return {
    wrap: (inner) => ({
      codec: inner.codec,
      keyId: inner.keyId,
      maxAbsValue: inner.maxAbsValue,
      encode(values, samples) {
        const list = pending.get(values.length) ?? [];
        list.push({ weights: values.slice(), samples });
        pending.set(values.length, list);
        return inner.encode(values, samples);
      },
      decode(body, params, header) {
        const out = inner.decode(body, params, header);
        const list = pending.get(params);
        if (list && list.length === header.clients) {
          const plain = fedAvg(list);
          for (let i = 0; i < plain.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(plain[i]! - out[i]!));
        }
        pending.delete(params);
        return out;
      },
      dispose: () => inner.dispose(),
    }),
    maxAbsError: () => maxAbsError,
  };
}

/**
 * The throwaway federation's maxRoundSamples for a simulation over `rows` samples in all: the
 * default (2^20), or the next power of two that holds them. A client's training windows are
 * fewer than its rows, so Σ n_k of any round fits. Why: the coordinator refuses a round whose
 * Σ n_k exceeds maxRoundSamples (the encrypted sum could overflow), and 60 machines × 30,000
 * five-minute samples (104 days) reached 1,054,405 with the default. Each doubling halves the
 * scale Δ, which costs nothing that shows: the average's error is about 5.5e-3·(S / 2^20) / Σ n_k
 * for 100 agents (common/crypto/params.ts), and S < 2·rows, so it stays near 1e-8 when the
 * windows are most of the rows.
 */
export function roundSampleBound(rows: number): number {
  if (!(Number.isInteger(rows) && rows >= 0)) throw new RangeError(`roundSampleBound: rows must be an integer ≥ 0, got ${rows}`);
  return Math.max(DEFAULT_MAX_ROUND_SAMPLES, 2 ** Math.ceil(Math.log2(Math.max(rows, 1))));
}
