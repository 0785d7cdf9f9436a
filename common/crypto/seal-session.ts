import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { CKKSEncoder } from 'node-seal/implementation/ckks-encoder.js';
import type { Context } from 'node-seal/implementation/context.js';
import type { Decryptor } from 'node-seal/implementation/decryptor.js';
import type { Encryptor } from 'node-seal/implementation/encryptor.js';
import type { Evaluator } from 'node-seal/implementation/evaluator.js';
import type { PlainText } from 'node-seal/implementation/plain-text.js';
import { IcosflError } from '../errors.js';
import { SEED_BYTES, type DerivedParams } from './params.js';
import { limbTable, mulAddConst, sqrtMinusOne } from './complex-slots.js';
import { loadSeal, type SEALLibrary } from './seal-loader.js';

/**
 * Owns every SEAL object of one agent (context, keys, encoder, encryptor, decryptor, evaluator and
 * the reused plaintext/ciphertexts) and frees them all in dispose(). Nothing outside this file
 * calls SEAL. SEAL never parses bytes from the network: the agent rebuilds canonical SEAL
 * ciphertext bytes from validated residues and seeds into a template made by SEAL itself.
 *
 * SEAL 4.1's serialisation of a seeded CKKS ciphertext with one prime (compression none):
 *   [0,16)                SEAL header (magic A15E, 16, version 4.1, size)
 *   [16,89)               parms_id (32), is_ntt_form (1), size=2, N, coeff_modulus_size=1, scale (f64), correction factor
 *   [89,105)              SEAL header of the data array; [105,113) its element count = N (c0 only)
 *   [113, 113+8N)         c0 residues, uint64 little-endian
 *   [113+8N, +16)         SEAL header of the PRNG info; then 1 byte PRNG type, then the 64-byte seed
 * The same ciphertext saved once loaded (c1 expanded) differs only in its data array: element count
 * 2N at [105,113), then c0 and c1 residues, and no PRNG info (113 + 16N bytes in all).
 * createSession() checks both layouts on a real encryption and refuses to run if SEAL differs.
 */
const C0_OFFSET = 113;
const SEAL_MAGIC = 0xa15e;
/** A CKKS plaintext (NTT form, one prime): header, parms_id, coeff_count, scale, then its data array. */
const PLAIN_DATA_OFFSET = 88;

export interface SealSession {
  readonly c0Offset: number;
  readonly seedOffset: number;
  readonly ciphertextBytes: number;
  /** Encodes `values` (N long, two per slot) at scale Δ and encrypts with a fresh seed; returns SEAL's bytes (c0 + seed). */
  encryptSlots(values: Float64Array): Uint8Array;
  /**
   * Decrypts the ciphertext (c0, Σ_k c1_k): `fillC0` writes the validated c0 residues as SEAL
   * uint64s into the template at `offset`; each c1_k is expanded by SEAL from seeds[k]. Returns the
   * N decoded values (Σ n_k·w_k), two per slot.
   */
  decryptSum(fillC0: (template: Uint8Array, offset: number) => void, seeds: readonly Uint8Array[]): Float64Array;
  /** Decrypts the ciphertext (c0, c1) of an expanded aggregate (wire kind 3): `fill` writes both polynomials' residues as SEAL uint64s at c0At and c1At. */
  decryptFull(fill: (template: Uint8Array, c0At: number, c1At: number) => void): Float64Array;
  dispose(): void;
}

function checkTemplate(t: Uint8Array, n: number): void {
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const seedInfo = C0_OFFSET + 8 * n;
  const ok =
    t.length === seedInfo + 16 + 1 + SEED_BYTES &&
    v.getUint16(0, true) === SEAL_MAGIC &&
    v.getUint16(89, true) === SEAL_MAGIC &&
    v.getUint32(105, true) === n &&
    v.getUint32(109, true) === 0 &&
    v.getUint16(seedInfo, true) === SEAL_MAGIC;
  if (!ok) throw new Error(`node-seal produced an unexpected seeded-ciphertext layout (${t.length} bytes); the codec was written for node-seal 6.0.3 (SEAL 4.1)`);
}

function checkFullTemplate(t: Uint8Array, n: number): void {
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const ok = t.length === C0_OFFSET + 16 * n && v.getUint16(0, true) === SEAL_MAGIC && v.getUint16(89, true) === SEAL_MAGIC && v.getUint32(105, true) === 2 * n && v.getUint32(109, true) === 0;
  if (!ok) throw new Error(`node-seal produced an unexpected ciphertext layout (${t.length} bytes); the codec was written for node-seal 6.0.3 (SEAL 4.1)`);
}

function checkPlain(p: Uint8Array, n: number): void {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const ok = p.length === PLAIN_DATA_OFFSET + 8 * n && v.getUint16(0, true) === SEAL_MAGIC && v.getUint32(48, true) === n && v.getUint16(64, true) === SEAL_MAGIC && v.getUint32(80, true) === n;
  if (!ok) throw new Error(`node-seal produced an unexpected plaintext layout (${p.length} bytes); the codec was written for node-seal 6.0.3 (SEAL 4.1)`);
}

export async function createSession(d: DerivedParams, secretKeyBytes: Uint8Array): Promise<SealSession> {
  const seal: SEALLibrary = await loadSeal();
  const owned: { delete(): void }[] = [];
  const own = <T extends { delete(): void }>(o: T): T => {
    owned.push(o);
    return o;
  };
  const disposeAll = (): void => {
    for (const o of owned.reverse()) o.delete();
    owned.length = 0;
  };
  try {
    const parms = own(seal.EncryptionParameters(seal.SchemeType.ckks));
    parms.setPolyModulusDegree(d.n);
    const moduli = own(seal.CoeffModulus.Create(d.n, Int32Array.from([d.qBits])));
    parms.setCoeffModulus(moduli);
    const q = parms.coeffModulus[0];
    if (q === undefined || Number(q) !== d.q) {
      throw new IcosflError('CRYPTO_PARAMS_MISMATCH', `SEAL chose q=${q} for N=${d.n}, ${d.qBits} bits; the federation was made with ${d.q}`);
    }
    const context: Context = own(seal.Context(parms, true, seal.SecurityLevel.tc128));
    if (!context.parametersSet()) throw new IcosflError('CRYPTO_KEY_INVALID', 'SEAL refused the federation parameters');
    const secretKey = own(seal.SecretKey());
    try {
      secretKey.loadArray(context, secretKeyBytes);
    } catch (cause) {
      throw new IcosflError('CRYPTO_KEY_INVALID', 'the secret key does not load under the federation parameters', { cause });
    }
    const keygen = own(seal.KeyGenerator(context, secretKey));
    // node-seal 6's Encryptor constructor requires a public key even for symmetric encryption; it
    // is derived from the secret key here and never leaves this object.
    const publicKey = own(keygen.createPublicKey());
    const encryptor: Encryptor = own(seal.Encryptor(context, publicKey, secretKey));
    const decryptor: Decryptor = own(seal.Decryptor(context, secretKey));
    const evaluator: Evaluator = own(seal.Evaluator(context));
    const encoder: CKKSEncoder = own(seal.CKKSEncoder(context));
    const plain: PlainText = own(seal.PlainText());
    const sum: CipherText = own(seal.CipherText());
    const term: CipherText = own(seal.CipherText());
    const none = seal.ComprModeType.none;

    const half = d.n / 2;
    const realPart = new Float64Array(half);
    const imagPart = new Float64Array(half);
    const savePlain = (): Uint8Array => plain.saveArray(none);

    // Multiplying plaintexts by ±i (complex-slots.ts). The self-test below picks the square root
    // of -1 that matches SEAL's NTT root and checks the whole construction on real numbers.
    const roots = sqrtMinusOne(d.q);
    let toImag = limbTable(roots[0], d.q); // × i
    let fromImag = limbTable(roots[1], d.q); // × -i

    /** Encodes values[0, N/2) + i·values[N/2, N) into `plain`. */
    const encodeComplex = (values: Float64Array): void => {
      for (let k = 0; k < half; k++) {
        realPart[k] = values[k]!;
        imagPart[k] = values[half + k]!;
      }
      encoder.encode(imagPart, d.scale, plain);
      const b = savePlain();
      encoder.encode(realPart, d.scale, plain);
      const a = savePlain();
      checkPlain(a, d.n);
      mulAddConst(a, a, b, PLAIN_DATA_OFFSET, d.n, toImag, d.q);
      plain.loadArray(context, a);
    };

    /** Decodes `plain` (a + i·b in each slot) into N real values. */
    const decodeComplex = (): Float64Array => {
      const out = new Float64Array(d.n);
      out.set(encoder.decode(plain).subarray(0, half));
      const bytes = savePlain();
      mulAddConst(bytes, undefined, bytes, PLAIN_DATA_OFFSET, d.n, fromImag, d.q);
      plain.loadArray(context, bytes);
      out.set(encoder.decode(plain).subarray(0, half), half);
      return out;
    };

    const probe = Float64Array.from({ length: d.n }, (_, k) => ((k % 97) - 48) / 8);
    const selfTest = (): boolean => {
      encodeComplex(probe);
      const back = decodeComplex();
      return back.every((v, k) => Math.abs(v - probe[k]!) < 1e-3);
    };
    if (!selfTest()) {
      [toImag, fromImag] = [fromImag, toImag];
      if (!selfTest()) throw new Error('two-values-per-slot packing failed its self-test against SEAL (NTT layout changed?)');
    }

    const encryptSlots = (values: Float64Array): Uint8Array => {
      encodeComplex(values);
      const serializable = encryptor.encryptSymmetricSerializable(plain);
      try {
        return serializable.saveArray(none);
      } finally {
        serializable.delete();
      }
    };

    // Two templates made by SEAL: one whose c0 the caller overwrites, one whose c0 stays zero (an
    // encryption of nothing but the seed's c1 once its seed is replaced) for the other clients.
    const template = encryptSlots(new Float64Array(d.n));
    checkTemplate(template, d.n);
    const zeroC0 = template.slice();
    zeroC0.fill(0, C0_OFFSET, C0_OFFSET + 8 * d.n);
    const seedOffset = C0_OFFSET + 8 * d.n + 17;
    // The unseeded form, for expanded aggregates: SEAL's own save of a loaded (expanded) ciphertext.
    sum.loadArray(context, template);
    const fullTemplate = sum.saveArray(none);
    checkFullTemplate(fullTemplate, d.n);

    return {
      c0Offset: C0_OFFSET,
      seedOffset,
      ciphertextBytes: template.length,
      encryptSlots(values) {
        const bytes = encryptSlots(values);
        if (bytes.length !== template.length) throw new Error('SEAL changed the seeded-ciphertext size between calls');
        return bytes;
      },
      decryptSum(fillC0, seeds) {
        fillC0(template, C0_OFFSET);
        template.set(seeds[0]!, seedOffset);
        sum.loadArray(context, template);
        for (let k = 1; k < seeds.length; k++) {
          zeroC0.set(seeds[k]!, seedOffset);
          term.loadArray(context, zeroC0);
          evaluator.add(sum, term, sum);
        }
        decryptor.decrypt(sum, plain);
        return decodeComplex();
      },
      decryptFull(fill) {
        fill(fullTemplate, C0_OFFSET, C0_OFFSET + 8 * d.n);
        sum.loadArray(context, fullTemplate);
        decryptor.decrypt(sum, plain);
        return decodeComplex();
      },
      dispose: disposeAll,
    };
  } catch (err) {
    disposeAll();
    throw err;
  }
}
