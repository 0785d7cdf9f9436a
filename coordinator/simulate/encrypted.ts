import { AgentCipher, aggregate, generateFederation } from '../../common/crypto/index.js';
import type { ClientUpdate } from '../strategy/fedavg.js';
import { fedAvg } from '../strategy/fedavg.js';

/**
 * The encrypted aggregation path for simulate: a throwaway federation (fresh CKKS key in
 * memory), every client encrypts n_k·w_k with the shared agent key, the coordinator code sums
 * ciphertexts with parameters only, an agent decrypts and divides by Σ n_k. The plaintext FedAvg
 * of the same updates is computed beside it so the run reports the CKKS error it introduced.
 */
export async function encryptedAggregator(): Promise<{
  aggregate: (updates: ClientUpdate[]) => Float32Array;
  maxAbsError: () => number;
  dispose: () => void;
}> {
  const fed = await generateFederation({ federationId: 'simulate' });
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
