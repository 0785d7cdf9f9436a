import { IcosflError } from '../errors.js';
import type { CoordinatorBundle } from './bundle.js';
import { LAZY_ADDS, addPacked47, packFromFloat64, residueOutOfRange, subPacked } from './packing.js';
import { SEED_BYTES, deriveParams, type DerivedParams } from './params.js';
import { KIND_AGGREGATE, MAX_CLIENTS, c0Offset, frameBytes, parseFrame, seedOffset, writeHeader, type FrameHeader } from './wire.js';

/**
 * The coordinator's side: sums encrypted updates without SEAL and without any key. c0 residues are
 * added in float64 straight from the packed wire form and reduced mod q every LAZY_ADDS frames
 * (exact: residues < 2^47); the c1 seeds are carried along (wire.ts says why). Inputs may be
 * updates or partial aggregates.
 */
export class UpdateAccumulator {
  readonly #d: DerivedParams;
  readonly #expectParamCount: number | undefined;
  #header: FrameHeader | undefined;
  #sum: Float64Array | undefined;
  readonly #inputs: { seeds: Uint8Array; clients: number }[] = [];
  readonly #seen = new Set<string>();
  /** Frames added since the sums were last reduced mod q (float64 stays exact below 64). */
  #unreduced = 0;

  constructor(bundle: CoordinatorBundle, opts: { paramCount?: number } = {}) {
    if (bundle && 'secretKey' in bundle) {
      throw new IcosflError('CRYPTO_SECRET_KEY_FORBIDDEN', 'the coordinator was handed an agent bundle with the secret key; give it the coordinator bundle');
    }
    this.#d = deriveParams(bundle.params);
    this.#expectParamCount = opts.paramCount;
  }

  get clients(): number {
    return this.#header?.clients ?? 0;
  }

  get totalSamples(): number {
    return this.#header?.totalSamples ?? 0;
  }

  /** Validates and adds one update or aggregate; on any error the accumulator is unchanged. */
  add(bytes: Uint8Array): void {
    const d = this.#d;
    const h = parseFrame(bytes, d, this.#expectParamCount ?? this.#header?.paramCount);
    const acc = this.#header;
    if (acc) {
      if (acc.clients + h.clients > MAX_CLIENTS) throw new IcosflError('CRYPTO_VALUE_OUT_OF_RANGE', `more than ${MAX_CLIENTS} clients in one aggregate`);
      if (acc.totalSamples + h.totalSamples > d.params.maxRoundSamples) {
        throw new IcosflError('CRYPTO_VALUE_OUT_OF_RANGE', `Σ n_k would reach ${acc.totalSamples + h.totalSamples}, over maxRoundSamples ${d.params.maxRoundSamples}: the encrypted sum could overflow`, { details: { totalSamples: acc.totalSamples + h.totalSamples } });
      }
    }
    // A replayed update carries the same 64-byte random seed as its first copy.
    const firstSeed = seedOffset(d, h, 0, 0);
    const key = Buffer.from(bytes.buffer, bytes.byteOffset + firstSeed, SEED_BYTES).toString('base64');
    if (this.#seen.has(key)) throw new IcosflError('CRYPTO_DUPLICATE_UPDATE', 'this update (or an aggregate containing it) was already added');

    // Until one frame is in, the size is not fixed: a refused first frame must not size the sum.
    if (!acc) this.#sum = new Float64Array(h.ciphertextCount * d.n);
    const sum = this.#sum!;
    for (let j = 0; j < h.ciphertextCount; j++) {
      const bad = addPacked47(bytes, c0Offset(d, j), d.n, d.q, sum, j * d.n);
      if (bad >= 0) {
        // Take back what this update added so far (exact: nothing was reduced since), then refuse it.
        subPacked(bytes, c0Offset(d, j), d.n, d.qBits - 32, sum, j * d.n, bad);
        for (let u = 0; u < j; u++) subPacked(bytes, c0Offset(d, u), d.n, d.qBits - 32, sum, u * d.n, d.n);
        throw residueOutOfRange(j * d.n + bad);
      }
    }
    if (++this.#unreduced >= LAZY_ADDS) this.#reduce();
    this.#seen.add(key);
    // Copy the seeds: the caller may reuse its receive buffer once add() returns.
    const seedsStart = seedOffset(d, h, 0, 0);
    this.#inputs.push({ seeds: Uint8Array.prototype.slice.call(bytes, seedsStart, seedsStart + h.ciphertextCount * h.clients * SEED_BYTES), clients: h.clients });
    this.#header = acc
      ? { ...acc, clients: acc.clients + h.clients, totalSamples: acc.totalSamples + h.totalSamples }
      : { ...h, kind: KIND_AGGREGATE };
  }

  #reduce(): void {
    const sum = this.#sum!;
    const q = this.#d.q;
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! % q;
    this.#unreduced = 0;
  }

  /** The aggregate's wire bytes (kind 2); the accumulator may keep adding afterwards. */
  finish(): Uint8Array {
    const h = this.#header;
    const sum = this.#sum;
    if (!h || !sum) throw new RangeError('UpdateAccumulator.finish: no update was added');
    const d = this.#d;
    this.#reduce();
    const out = new Uint8Array(frameBytes(d, h.ciphertextCount, h.clients));
    writeHeader(out, d, h);
    for (let j = 0; j < h.ciphertextCount; j++) {
      packFromFloat64(sum, j * d.n, d.n, d.qBits - 32, out, c0Offset(d, j));
      let k = 0;
      for (const input of this.#inputs) {
        const from = j * input.clients * SEED_BYTES;
        out.set(input.seeds.subarray(from, from + input.clients * SEED_BYTES), seedOffset(d, h, j, k));
        k += input.clients;
      }
    }
    return out;
  }
}

/** One row of scratch sums per ring degree for checkFrame: its values are never read. */
const scratchRows = new Map<number, Float64Array>();

/**
 * What UpdateAccumulator.add checks of one frame on its own (header, layout, every residue below
 * q), without building a sum: the coordinator checks each update as it arrives, and a fresh
 * accumulator per update cost a 32 KB sum buffer each (1,000 agents: 32 MB of garbage a round).
 * Throws what add() on an empty accumulator would throw.
 */
export function checkFrame(d: DerivedParams, bytes: Uint8Array, expectParamCount?: number): FrameHeader {
  const h = parseFrame(bytes, d, expectParamCount);
  let row = scratchRows.get(d.n);
  if (!row) scratchRows.set(d.n, (row = new Float64Array(d.n)));
  for (let j = 0; j < h.ciphertextCount; j++) {
    // The adder's own residue check, into a row that is cleared instead of kept.
    row.fill(0);
    const bad = addPacked47(bytes, c0Offset(d, j), d.n, d.q, row, 0);
    if (bad >= 0) throw residueOutOfRange(j * d.n + bad);
  }
  return h;
}

/** Sums encrypted updates (or partial aggregates) into one aggregate. */
export function aggregate(bundle: CoordinatorBundle, updates: readonly Uint8Array[], opts: { paramCount?: number } = {}): Uint8Array {
  if (!Array.isArray(updates) || updates.length === 0) throw new RangeError('aggregate: updates must be a non-empty array of Uint8Array');
  const acc = new UpdateAccumulator(bundle, opts);
  for (const u of updates) acc.add(u);
  return acc.finish();
}
