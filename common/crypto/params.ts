import { createHash } from 'node:crypto';
import { z } from 'zod';
import { IcosflError } from '../errors.js';

/*
 * Choosing the CKKS parameters (Microsoft SEAL examples style: the numbers first).
 *
 * We only ever add ciphertexts, so there is no multiplication depth to pay for: no relinearisation
 * or Galois keys, no rescaling, and ONE prime in the coefficient modulus (SEAL then turns key
 * switching off, which we do not need). Every bit of q is wire size, so q is as small as the
 * precision allows.
 *
 * Wire size. Agents share the secret key, so they encrypt symmetrically with a seed: the c1
 * polynomial is replaced by a 64-byte PRNG seed and only c0 travels — N coefficients < q, which we
 * pack into exactly ceil(log2 q) = 47 bits each (SEAL stores them as uint64; zstd cannot compress
 * uniform residues). N/2 = 2048 complex slots carry two real parameters each (complex-slots.ts), so:
 *     bytes/param = (N·47/8 + 64) / N = (24064 + 64) / 4096 = 5.89   (goal ≤ 12)
 * NVFlare/TenSEAL (N=8192, [60,40,40]) send ≈57, naive node-seal with four primes 98.
 *
 * Security. The HE standard (homomorphicencryption.org, ternary secret; the table SEAL enforces in
 * CoeffModulus::MaxBitCount) allows log2 q ≤ 54 at N=2048 for 128 bits, and at N=4096 log2 q ≤ 109
 * for 128, ≤ 75 for 192, ≤ 58 for 256. N=2048 would also reach 128 bits with q < 2^54, but
 * N=4096 costs the same bytes per parameter, halves the ciphertext count and gives 256 bits, so we
 * take it. securityBits() below reads the same table; a test checks it against SEAL's.
 *
 * Overflow. Agent k encrypts n_k·w_k at scale Δ; the coordinator adds. The decrypted sum must stay
 * inside (-q/2, q/2): every coefficient of it, |coef| + noise < q/2. Agents refuse |w| > W
 * (maxAbsWeight) and n_k > S; the coordinator refuses a sum with Σ n_k > S (maxRoundSamples; n_k
 * travels in the clear). So every value |Σ n_k·w_k| ≤ W·S; a real-slot encoding has coefficients
 * ≤ max|value|·Δ, and packing two values per slot adds two such polynomials, so |coef| ≤ 2·W·S·Δ.
 * We take Δ = 2^floor(log2(q / (6·W·S))): the message uses at most q/3, leaving q/6 ≈ 2^44 ≫ noise
 * (≈ 2^13). Defaults W = 16, S = 2^20 → Δ = 2^20.
 *
 * Precision (measured): fresh symmetric noise (σ = 3.2 per coefficient) plus encoding rounding is
 * ≈ 560/Δ max abs error per value for one agent and ≈ 5,700/Δ for a sum of 100 (√K growth), i.e.
 * 5.5e-3 in Σ n_k·w_k at Δ = 2^20; the average divides by Σ n_k, so its max abs error ≈ 5.5e-3/Σ n_k:
 * within 1e-4 once Σ n_k ≥ 55 with 100 agents (≥ 6 with one). The dynamic range q/noise ≈ 2^34 is
 * what W·S trades against that floor: halve maxRoundSamples and the floor halves.
 *
 * Decryption hygiene. Whoever holds a CKKS ciphertext and its exact decryption can solve for the
 * secret key (Li and Micciancio, Eurocrypt 2021): the decoded value carries the encryption noise.
 * The coordinator keeps every aggregate, so no decoded value leaves this layer as decoded: each
 * Σ n_k·w_k is rounded to a multiple of decryptionStep(d, K) = 2^(12 + ceil(log2 √K)) / Δ, at
 * least 7× the largest noise measured above (4,096 vs 560 for one agent, 65,536 vs 5,700 for
 * 100), so the output is a function of the message alone except near grid boundaries, and an
 * attacker's equations carry an error the size of the step instead of the noise. The average's
 * cost: ≤ step / (2·Σ n_k), 2e-5 for one agent with n = 100 at Δ = 2^20, 3e-7 for 100 agents.
 *
 * How n_k enters: n_k·w_k (not a pre-divided w_k/K, which gets the average wrong when an agent
 * drops out: a missing agent simply adds nothing to the sum or to Σ n_k).
 */
export const PARAMS_FORMAT = 'icosfl-ckks-v1';
export const POLY_MODULUS_DEGREE = 4096;
export const COEFF_MODULUS_BITS = 47;
export const DEFAULT_MAX_ABS_WEIGHT = 16;
export const DEFAULT_MAX_ROUND_SAMPLES = 2 ** 20;
/** Bytes SEAL uses for a PRNG seed (prng_seed_type: 8 × uint64). */
export const SEED_BYTES = 64;

/** HE standard maximum log2 q by ring degree, ternary secret (SEAL's CoeffModulus::MaxBitCount). */
const HE_STANDARD: Record<number, Record<number, number>> = {
  128: { 1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881 },
  192: { 1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611 },
  256: { 1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476 },
};

/** What keys init writes and both sides load; everything else is derived from it. */
export const federationParamsSchema = z
  .object({
    format: z.literal(PARAMS_FORMAT),
    federationId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'federationId: 1–64 of [A-Za-z0-9._-]'),
    polyModulusDegree: z.literal(POLY_MODULUS_DEGREE),
    coeffModulusBits: z.literal(COEFF_MODULUS_BITS),
    /** The prime q in decimal: SEAL's CoeffModulus.Create(N, [47]) is deterministic; we re-check it. */
    coeffModulus: z.string().regex(/^[0-9]{1,16}$/),
    maxAbsWeight: z.number().positive().max(2 ** 20),
    maxRoundSamples: z.number().int().min(1).max(2 ** 32 - 1),
    /** First 16 bytes of SHA-256 of the secret key (hex): binds the key to this parameter set. */
    keyId: z.string().regex(/^[0-9a-f]{32}$/),
    /**
     * Key epoch: 0 from `keys init`, +1 for each `keys rotate` (same federation and parameters, a new
     * secret key). Rounds announce it; absent in bundles written before rotation existed (= 0).
     */
    epoch: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  })
  .strict();

export type FederationParams = z.infer<typeof federationParamsSchema>;

/** Everything the codec needs, computed once from FederationParams. */
export interface DerivedParams {
  readonly params: FederationParams;
  readonly n: number; // ring degree N (coefficients per polynomial)
  readonly slots: number; // real values per ciphertext: N (N/2 complex slots, two reals each)
  readonly q: number; // < 2^47, exact in a double
  readonly qBits: number;
  readonly scale: number; // Δ, a power of two
  readonly packedPolyBytes: number; // one packed c0
  readonly paramsHash: Uint8Array; // 16 bytes, in every wire header
}

export function parseFederationParams(value: unknown, source: string): FederationParams {
  const parsed = federationParamsSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const q = Number(parsed.data.coeffModulus);
  if (q >= 2 ** COEFF_MODULUS_BITS || q < 2 ** (COEFF_MODULUS_BITS - 1) || q % (2 * POLY_MODULUS_DEGREE) !== 1) {
    throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: coeffModulus ${parsed.data.coeffModulus} is not a ${COEFF_MODULUS_BITS}-bit NTT prime for N=${POLY_MODULUS_DEGREE}`);
  }
  return parsed.data;
}

export function deriveParams(params: FederationParams): DerivedParams {
  const q = Number(params.coeffModulus);
  const scaleLog2 = Math.floor(Math.log2(q / (6 * params.maxAbsWeight * params.maxRoundSamples)));
  if (scaleLog2 < 8) {
    throw new IcosflError('CRYPTO_KEY_INVALID', `maxAbsWeight·maxRoundSamples = ${params.maxAbsWeight * params.maxRoundSamples} leaves a scale of 2^${scaleLog2}; lower one of them`);
  }
  const canonical = JSON.stringify([params.format, params.federationId, params.polyModulusDegree, params.coeffModulus, params.maxAbsWeight, params.maxRoundSamples, params.keyId]);
  return {
    params,
    n: params.polyModulusDegree,
    slots: params.polyModulusDegree, // two real values per complex slot (complex-slots.ts)
    q,
    qBits: params.coeffModulusBits,
    scale: 2 ** scaleLog2,
    packedPolyBytes: (params.polyModulusDegree * params.coeffModulusBits) / 8,
    paramsHash: new Uint8Array(createHash('sha256').update(canonical).digest().subarray(0, 16)),
  };
}

/**
 * The grid every decrypted Σ n_k·w_k is rounded to (see "Decryption hygiene" above): a power of two
 * over Δ, at least 7× the CKKS noise of a sum of `clients` fresh encryptions.
 */
export function decryptionStep(d: DerivedParams, clients: number): number {
  if (!Number.isInteger(clients) || clients < 1) throw new RangeError(`decryptionStep: clients must be a positive integer, got ${clients}`);
  return 2 ** (12 + Math.ceil(Math.log2(Math.sqrt(clients)))) / d.scale;
}

/** Classical security level of (N, log2 q) by the HE standard table; 0 when below 128. */
export function securityBits(n: number, qBits: number): number {
  for (const level of [256, 192, 128]) if (qBits <= (HE_STANDARD[level]![n] ?? 0)) return level;
  return 0;
}
