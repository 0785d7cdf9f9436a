import { IcosflError } from '../../common/errors.js';
import { UpdateAccumulator, type CoordinatorBundle } from '../../common/crypto/index.js';

/**
 * Weighted FedAvg on ciphertexts, the encrypted twin of fedavg.ts. Each agent sent Enc(n_k·w_k)
 * and n_k in the clear; the coordinator adds both and never decrypts (it holds no key; SEAL is not
 * even loaded). The agents decrypt Σ n_k·w_k and divide by Σ n_k, so an agent that dropped out
 * simply is not in the sum. Strategies that need plaintext on the server (FedAdam, median, Krum)
 * cannot run here by construction.
 */
export interface EncryptedRoundOptions {
  /** The model layout's parameter count; updates of another length fail with CRYPTO_LAYOUT_MISMATCH. */
  paramCount?: number;
  /** Fewer contributing agents than this and result() refuses (a sum of one reveals that update to the other agents). */
  minClients?: number;
}

export class EncryptedFedAvgRound {
  readonly #acc: UpdateAccumulator;
  readonly #minClients: number;

  constructor(bundle: CoordinatorBundle, opts: EncryptedRoundOptions = {}) {
    const minClients = opts.minClients ?? 1;
    if (!Number.isInteger(minClients) || minClients < 1) throw new RangeError(`minClients must be a positive integer, got ${opts.minClients}`);
    this.#acc = new UpdateAccumulator(bundle, opts.paramCount === undefined ? {} : { paramCount: opts.paramCount });
    this.#minClients = minClients;
  }

  /** Validates and adds one agent's update; a bad update throws and leaves the round unchanged. */
  add(update: Uint8Array): void {
    this.#acc.add(update);
  }

  get clients(): number {
    return this.#acc.clients;
  }

  get totalSamples(): number {
    return this.#acc.totalSamples;
  }

  /** The encrypted global update to broadcast to the agents. */
  result(): Uint8Array {
    if (this.#acc.clients < this.#minClients) {
      throw new IcosflError('CRYPTO_TOO_FEW_CLIENTS', `only ${this.#acc.clients} agents contributed; the round needs ${this.#minClients}`, { details: { clients: this.#acc.clients } });
    }
    return this.#acc.finish();
  }
}

/** One-shot form: Σ of the given encrypted updates (the agents that answered in time). */
export function ckksFedAvg(bundle: CoordinatorBundle, updates: readonly Uint8Array[], opts: EncryptedRoundOptions = {}): Uint8Array {
  if (!Array.isArray(updates) || updates.length === 0) throw new RangeError('ckksFedAvg: updates must be a non-empty array of Uint8Array');
  const round = new EncryptedFedAvgRound(bundle, opts);
  for (const u of updates) round.add(u);
  return round.result();
}
