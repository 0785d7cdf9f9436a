import { createHash } from 'node:crypto';
import { AgentCipher } from '../../common/crypto/index.js';
import type { Codec, GlobalHeader } from '../../common/protocol/messages.js';

/**
 * How an agent turns what it contributes into an update body and a global's body back into
 * values: CKKS (encrypt n_k·w_k with the federation's key; decrypt Σ n_k·w_k and divide by Σ n_k)
 * or plaintext (w_k as float32, for the benchmark that measures what encryption costs).
 */
export interface AgentCodec {
  readonly codec: Codec;
  /** The key this agent holds (CKKS keyId); '' for plaintext. */
  readonly keyId: string;
  /** Largest |value| encode takes (CKKS: the key's maxAbsWeight); a DP release is clamped to it. */
  readonly maxAbsValue: number;
  encode(values: Float32Array, samples: number): Uint8Array;
  /** The weighted average the global carries. */
  decode(body: Uint8Array, params: number, header: Pick<GlobalHeader, 'clients' | 'totalSamples'>): Float32Array;
  dispose(): void;
}

/**
 * Key rotation: the CKKS codecs of every key epoch an agent holds (its current and next
 * bundles), by key id. A session encodes and decodes with the codec of the key its first
 * announcement names (participant.ts).
 */
export interface AgentKeyring {
  forKey(keyId: string): AgentCodec | undefined;
  /** The key ids held, for presence. */
  keyIds(): string[];
}

export function ckksCodec(cipher: AgentCipher): AgentCodec {
  return {
    codec: 'ckks',
    keyId: cipher.params.params.keyId,
    maxAbsValue: cipher.params.params.maxAbsWeight,
    encode: (values, samples) => cipher.encryptUpdate(values, samples),
    decode: (body, params) => cipher.decryptAggregate(body, { paramCount: params }).weights,
    dispose: () => cipher.dispose(),
  };
}

export function plaintextCodec(): AgentCodec {
  return {
    codec: 'plaintext',
    keyId: '',
    maxAbsValue: Infinity,
    encode: (values) => new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
    decode(body, params) {
      if (body.length !== params * 4) throw new RangeError(`plaintext global of ${body.length} bytes; the layout has ${params} float32 parameters`);
      return new Float32Array(new Uint8Array(body).buffer);
    },
    dispose() {},
  };
}

/**
 * A codec whose decodings are shared by every holder of the same global: in a simulation all
 * agents of one process receive the same bytes, and decrypting them once per agent (one SEAL
 * seed expansion per contributor and ciphertext each) would be most of the run's time. The
 * result is the one each agent would get on its own: decryption is deterministic.
 */
export function sharedDecodings(inner: AgentCodec, keep = 4): AgentCodec {
  const cache = new Map<string, Float32Array>();
  return {
    codec: inner.codec,
    keyId: inner.keyId,
    maxAbsValue: inner.maxAbsValue,
    encode: (values, samples) => inner.encode(values, samples),
    decode(body, params, header) {
      const key = `${params}:${createHash('sha256').update(body).digest('hex')}`;
      let v = cache.get(key);
      if (!v) {
        v = inner.decode(body, params, header);
        cache.set(key, v);
        if (cache.size > keep) cache.delete(cache.keys().next().value!);
      }
      return v.slice();
    },
    dispose: () => inner.dispose(),
  };
}
