import { IcosflError } from '../errors.js';
import { keyId, type AgentBundle } from './bundle.js';
import { packFromUint64, unpackToUint64 } from './packing.js';
import { SEED_BYTES, decryptionStep, deriveParams, type DerivedParams } from './params.js';
import { createSession, type SealSession } from './seal-session.js';
import { KIND_EXPANDED, KIND_UPDATE, MAX_PARAM_COUNT, c0Offset, c1Offset, frameBytes, parseFrame, seedOffset, writeHeader } from './wire.js';

export interface DecryptedAggregate {
  /** Σ n_k·w_k / Σ n_k, the weighted FedAvg of the clients in the aggregate. */
  weights: Float32Array;
  totalSamples: number;
  clients: number;
}

/**
 * The agent's side of the codec: encrypts n_k·w_k (all layers flattened, packed into as few
 * ciphertexts as the slots allow) and decrypts aggregates. Holds the federation's secret key.
 * Not safe for concurrent use from several async contexts (it reuses SEAL objects); call dispose().
 */
export class AgentCipher {
  readonly #d: DerivedParams;
  #session: SealSession | undefined;
  readonly #slots: Float64Array;

  private constructor(d: DerivedParams, session: SealSession) {
    this.#d = d;
    this.#session = session;
    this.#slots = new Float64Array(d.slots);
  }

  static async create(bundle: AgentBundle): Promise<AgentCipher> {
    if (!(bundle?.secretKey instanceof Uint8Array)) throw new TypeError('AgentCipher.create: bundle.secretKey must be a Uint8Array (load it with loadAgentBundle)');
    const d = deriveParams(bundle.params);
    if (keyId(bundle.secretKey) !== bundle.params.keyId) {
      throw new IcosflError('CRYPTO_KEY_INVALID', "the secret key does not match the parameters' keyId (corrupt or from another federation)");
    }
    return new AgentCipher(d, await createSession(d, bundle.secretKey));
  }

  get params(): DerivedParams {
    return this.#d;
  }

  #live(): SealSession {
    if (!this.#session) throw new Error('AgentCipher used after dispose()');
    return this.#session;
  }

  /** Refuses (CRYPTO_VALUE_OUT_OF_RANGE) anything that could overflow the sum, before SEAL sees it. */
  encryptUpdate(weights: Float32Array, sampleCount: number): Uint8Array {
    const session = this.#live();
    const d = this.#d;
    if (!(weights instanceof Float32Array)) throw new TypeError('encryptUpdate: weights must be a Float32Array');
    if (weights.length < 1 || weights.length > MAX_PARAM_COUNT) throw new RangeError(`encryptUpdate: weights.length must be 1…${MAX_PARAM_COUNT}, got ${weights.length}`);
    const maxSamples = d.params.maxRoundSamples;
    if (!Number.isInteger(sampleCount) || sampleCount < 1 || sampleCount > maxSamples) {
      throw new IcosflError('CRYPTO_VALUE_OUT_OF_RANGE', `sampleCount must be an integer 1…${maxSamples} (maxRoundSamples), got ${sampleCount}`, { details: { sampleCount } });
    }
    const limit = d.params.maxAbsWeight;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i]!;
      // `!(|w| <= limit)` is also true for NaN.
      if (!(Math.abs(w) <= limit)) {
        throw new IcosflError('CRYPTO_VALUE_OUT_OF_RANGE', `weight ${i} is ${w}; the federation encodes |w| ≤ ${limit} (maxAbsWeight)`, { details: { index: i, value: w } });
      }
    }
    const header = { kind: KIND_UPDATE, paramCount: weights.length, ciphertextCount: Math.ceil(weights.length / d.slots), clients: 1, totalSamples: sampleCount };
    const out = new Uint8Array(frameBytes(d, header.ciphertextCount, 1));
    writeHeader(out, d, header);
    const slots = this.#slots;
    for (let j = 0; j < header.ciphertextCount; j++) {
      const base = j * d.slots;
      const count = Math.min(d.slots, weights.length - base);
      for (let i = 0; i < count; i++) slots[i] = sampleCount * weights[base + i]!;
      slots.fill(0, count);
      const sealBytes = session.encryptSlots(slots);
      packFromUint64(sealBytes, session.c0Offset, d.n, d.qBits - 32, out, c0Offset(d, j));
      out.set(sealBytes.subarray(session.seedOffset, session.seedOffset + SEED_BYTES), seedOffset(d, header, j, 0));
    }
    return out;
  }

  /**
   * Decrypts an aggregate (or a single update), rounds each Σ n_k·w_k to decryptionStep (so no raw
   * decryption, which would carry the key-revealing noise, ever leaves this class) and divides by
   * Σ n_k. The only decryption path of the codec. A seeded aggregate (kinds 1, 2) costs one SEAL
   * seed expansion per client per ciphertext, `maxClients` (the federation's size) bounds that
   * work up front; an expanded one (kind 3) one decryption per ciphertext.
   */
  decryptAggregate(bytes: Uint8Array, opts: { paramCount?: number; maxClients?: number } = {}): DecryptedAggregate {
    const session = this.#live();
    const d = this.#d;
    const h = parseFrame(bytes, d, opts.paramCount);
    if (opts.maxClients !== undefined && h.clients > opts.maxClients) {
      throw new IcosflError('CRYPTO_VALUE_OUT_OF_RANGE', `the aggregate claims ${h.clients} clients, more than maxClients ${opts.maxClients}`, { details: { clients: h.clients } });
    }
    const weights = new Float32Array(h.paramCount);
    const step = decryptionStep(d, h.clients);
    const seeds: Uint8Array[] = new Array<Uint8Array>(h.clients);
    const hiBits = d.qBits - 32;
    for (let j = 0; j < h.ciphertextCount; j++) {
      let values: Float64Array;
      if (h.kind === KIND_EXPANDED) {
        values = session.decryptFull((template, c0At, c1At) => {
          unpackToUint64(bytes, c0Offset(d, j), d.n, hiBits, d.q, template, c0At, j * d.n);
          unpackToUint64(bytes, c1Offset(d, h, j), d.n, hiBits, d.q, template, c1At, j * d.n);
        });
      } else {
        for (let k = 0; k < h.clients; k++) {
          const off = seedOffset(d, h, j, k);
          seeds[k] = bytes.subarray(off, off + SEED_BYTES);
        }
        values = session.decryptSum((template, at) => unpackToUint64(bytes, c0Offset(d, j), d.n, hiBits, d.q, template, at, j * d.n), seeds);
      }
      const base = j * d.slots;
      const count = Math.min(d.slots, h.paramCount - base);
      for (let i = 0; i < count; i++) weights[base + i] = (Math.round(values[i]! / step) * step) / h.totalSamples;
      values.fill(0);
    }
    return { weights, totalSamples: h.totalSamples, clients: h.clients };
  }

  dispose(): void {
    this.#session?.dispose();
    this.#session = undefined;
  }
}
