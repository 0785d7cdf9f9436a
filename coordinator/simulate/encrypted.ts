import { AgentCipher, aggregate, DEFAULT_MAX_ROUND_SAMPLES, generateFederation } from '../../common/crypto/index.js';
import type { ClientUpdate } from '../strategy/fedavg.js';
import { fedAvg } from '../strategy/fedavg.js';

/**
 * The encrypted aggregation path for simulate: a throwaway federation (fresh CKKS key in
 * memory), every client encrypts n_k·w_k with the shared agent key, the coordinator code sums
 * ciphertexts with parameters only, an agent decrypts and divides by Σ n_k. The plaintext FedAvg
 * of the same updates is computed beside it so the run reports the CKKS error it introduced.
 */
export async function encryptedAggregator(opts: { maxRoundSamples?: number } = {}): Promise<{
  aggregate: (updates: ClientUpdate[]) => Float32Array;
  maxAbsError: () => number;
  dispose: () => void;
}> {
  const fed = await generateFederation({ federationId: 'simulate', ...opts });
  const cipher = await AgentCipher.create(fed.agent);
  let maxAbsError = 0;
  return {
    aggregate(updates) {
      const frames = updates.map((u) => cipher.encryptUpdate(u.weights, Math.round(u.samples)));
      const result = cipher.decryptAggregate(aggregate(fed.coordinator, frames), { paramCount: updates[0]!.weights.length });
      const plain = fedAvg(updates);
      for (let i = 0; i < plain.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(plain[i]! - result.weights[i]!));
      return result.weights;
    },
    maxAbsError: () => maxAbsError,
    dispose: () => cipher.dispose(),
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
