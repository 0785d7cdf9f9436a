import { IcosflError } from '../errors.js';
import { SEED_BYTES, type DerivedParams } from './params.js';

/**
 * The wire format of encrypted updates and aggregates (little-endian), validated completely here
 * before any byte reaches SEAL or the coordinator's adder:
 *
 *   off  size  field
 *     0     4  magic 'ICKS'
 *     4     1  version (1)
 *     5     1  kind: 1 = one agent's update, 2 = an aggregate of `clients` updates carrying their seeds,
 *              3 = an aggregate of `clients` updates with its c1 polynomials expanded and summed
 *     6     2  reserved, 0
 *     8    16  parameter-set hash (federation id, N, q, W, S, key id; see params.ts)
 *    24     4  paramCount: model parameters (the model layout's length)
 *    28     4  ciphertextCount = ceil(paramCount / N): N values per ciphertext, two per slot
 *    32     4  clients: 1 for an update
 *    36     4  totalSamples: n_k for an update, Σ n_k for an aggregate
 *    40     …  ciphertextCount packed c0 polynomials (packing.ts), then
 *              kinds 1, 2: for each ciphertext the `clients` 64-byte PRNG seeds of its c1 polynomials
 *              kind 3:     ciphertextCount packed c1 polynomials, Σ c1_k mod q
 *
 * A small aggregate keeps every agent's c1 seed instead of expanding and adding the c1 polynomials:
 * expanding a seed costs ≈ 0.6 ms per ciphertext (seed-expansion.ts), ≈ 30× the adder's whole
 * cost per update. Past EXPAND_ABOVE_CLIENTS the seeds outweigh one packed polynomial (376 × 64
 * bytes > 24,064), so the adder expands them into one c1 (kind 3): the aggregate stays at two
 * polynomials per ciphertext however many agents it holds, and a decrypting agent does one SEAL
 * decryption per ciphertext instead of one seed expansion per client (docs/decisions.md D18).
 */
export const WIRE_MAGIC = 0x534b4349; // 'ICKS' read as little-endian uint32
export const WIRE_VERSION = 1;
export const KIND_UPDATE = 1;
export const KIND_AGGREGATE = 2;
export const KIND_EXPANDED = 3;
export const HEADER_BYTES = 40;
export const MAX_PARAM_COUNT = 2 ** 26;
export const MAX_CLIENTS = 2 ** 16;

export interface FrameHeader {
  kind: number;
  paramCount: number;
  ciphertextCount: number;
  clients: number;
  totalSamples: number;
}

/** Clients above which an aggregate is written expanded (kind 3): where their seeds outweigh one packed c1. */
export function expandAboveClients(d: DerivedParams): number {
  return Math.floor(d.packedPolyBytes / SEED_BYTES);
}

export function frameBytes(d: DerivedParams, ciphertextCount: number, clients: number, kind = KIND_AGGREGATE): number {
  if (kind === KIND_EXPANDED) return HEADER_BYTES + ciphertextCount * 2 * d.packedPolyBytes;
  return HEADER_BYTES + ciphertextCount * (d.packedPolyBytes + clients * SEED_BYTES);
}

export function c0Offset(d: DerivedParams, j: number): number {
  return HEADER_BYTES + j * d.packedPolyBytes;
}

/** Kind 3: where ciphertext j's summed c1 starts. */
export function c1Offset(d: DerivedParams, h: FrameHeader, j: number): number {
  return HEADER_BYTES + (h.ciphertextCount + j) * d.packedPolyBytes;
}

/** Kinds 1 and 2: where seed k of ciphertext j starts. */
export function seedOffset(d: DerivedParams, h: FrameHeader, j: number, k: number): number {
  return HEADER_BYTES + h.ciphertextCount * d.packedPolyBytes + (j * h.clients + k) * SEED_BYTES;
}

export function writeHeader(dst: Uint8Array, d: DerivedParams, h: FrameHeader): void {
  const v = new DataView(dst.buffer, dst.byteOffset, HEADER_BYTES);
  v.setUint32(0, WIRE_MAGIC, true);
  v.setUint8(4, WIRE_VERSION);
  v.setUint8(5, h.kind);
  v.setUint16(6, 0, true);
  dst.set(d.paramsHash, 8);
  v.setUint32(24, h.paramCount, true);
  v.setUint32(28, h.ciphertextCount, true);
  v.setUint32(32, h.clients, true);
  v.setUint32(36, h.totalSamples, true);
}

function malformed(message: string, details: Record<string, unknown> = {}): IcosflError {
  return new IcosflError('CRYPTO_MALFORMED_UPDATE', message, { details });
}

/**
 * Checks everything but the residues (which the adder and the decryptor check in their one pass; for
 * kind 3 the c1 residues too)
 * and returns the header. `expectParamCount` is the model layout's length when the caller knows it.
 */
export function parseFrame(bytes: unknown, d: DerivedParams, expectParamCount?: number): FrameHeader {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`encrypted update: expected a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}`);
  if (bytes.length < HEADER_BYTES) throw malformed(`truncated: ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`, { length: bytes.length });
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (v.getUint32(0, true) !== WIRE_MAGIC) throw malformed('not an icosfl ciphertext (bad magic)');
  const version = v.getUint8(4);
  if (version !== WIRE_VERSION) throw malformed(`unsupported wire version ${version} (this build reads ${WIRE_VERSION})`, { version });
  const kind = v.getUint8(5);
  if (kind !== KIND_UPDATE && kind !== KIND_AGGREGATE && kind !== KIND_EXPANDED) throw malformed(`unknown frame kind ${kind}`, { kind });
  if (v.getUint16(6, true) !== 0) throw malformed('reserved header bytes are not zero');
  for (let i = 0; i < 16; i++) {
    if (bytes[8 + i] !== d.paramsHash[i]) {
      throw new IcosflError('CRYPTO_PARAMS_MISMATCH', 'the ciphertext was made for another federation or parameter set');
    }
  }
  const h: FrameHeader = {
    kind,
    paramCount: v.getUint32(24, true),
    ciphertextCount: v.getUint32(28, true),
    clients: v.getUint32(32, true),
    totalSamples: v.getUint32(36, true),
  };
  if (h.paramCount < 1 || h.paramCount > MAX_PARAM_COUNT) throw malformed(`paramCount ${h.paramCount} is outside 1…${MAX_PARAM_COUNT}`, { paramCount: h.paramCount });
  if (h.ciphertextCount !== Math.ceil(h.paramCount / d.slots)) {
    throw malformed(`ciphertextCount ${h.ciphertextCount} does not fit paramCount ${h.paramCount} (${d.slots} slots each)`, { ...h });
  }
  if (expectParamCount !== undefined && h.paramCount !== expectParamCount) {
    throw new IcosflError('CRYPTO_LAYOUT_MISMATCH', `the update has ${h.paramCount} parameters, the model layout has ${expectParamCount}`, { details: { paramCount: h.paramCount, expected: expectParamCount } });
  }
  if (h.clients < 1 || h.clients > MAX_CLIENTS || (kind === KIND_UPDATE && h.clients !== 1)) {
    throw malformed(`client count ${h.clients} is invalid for a ${kind === KIND_UPDATE ? 'single update' : 'aggregate'}`, { clients: h.clients });
  }
  if (h.totalSamples < h.clients || h.totalSamples > d.params.maxRoundSamples) {
    throw new IcosflError('CRYPTO_VALUE_OUT_OF_RANGE', `sample count ${h.totalSamples} is outside ${h.clients}…${d.params.maxRoundSamples} (maxRoundSamples)`, { details: { totalSamples: h.totalSamples } });
  }
  const expected = frameBytes(d, h.ciphertextCount, h.clients, kind);
  if (bytes.length < expected) throw malformed(`truncated: ${bytes.length} bytes, the header announces ${expected}`, { length: bytes.length, expected });
  if (bytes.length > expected) throw malformed(`oversized: ${bytes.length} bytes, the header announces ${expected}`, { length: bytes.length, expected });
  return h;
}
