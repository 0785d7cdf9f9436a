import { IcosflError } from '../errors.js';
import type { CoordinatorBundle } from './bundle.js';
import { LAZY_ADDS, addPacked47, packFromFloat64, residueOutOfRange, subPacked } from './packing.js';
import { SEED_BYTES, deriveParams, type DerivedParams } from './params.js';
import { SeedExpander } from './seed-expansion.js';
import { KIND_AGGREGATE, KIND_EXPANDED, MAX_CLIENTS, c0Offset, c1Offset, expandAboveClients, frameBytes, parseFrame, seedOffset, writeHeader, type FrameHeader } from './wire.js';

/**
 * The coordinator's side: sums encrypted updates without SEAL and without any key. c0 residues are
 * added in float64 straight from the packed wire form and reduced mod q every LAZY_ADDS frames
 * (exact: residues < 2^47). The c1 seeds are carried along while the aggregate is small; past
 * `expandAbove` clients (default: where the seeds outweigh one packed polynomial, wire.ts) they
 * are expanded (seed-expansion.ts: public randomness, no key) and summed into one c1 per
 * ciphertext, and the aggregate is written as kind 3. Inputs may be updates or partial aggregates
 * of either kind (an aggregator worker's partial sum, coordinator/aggregator).
 */
export class UpdateAccumulator {
  readonly #d: DerivedParams;
  readonly #expectParamCount: number | undefined;
  readonly #expandAbove: number;
  #header: FrameHeader | undefined;
  #sum: Float64Array | undefined;
  /** Σ c1 of the kind-3 inputs (and the expanded seeds once reduced), once the aggregate is expanded. */
  #c1: Float64Array | undefined;
  /** One per ciphertext: the seeds expanded since the last reduction into #c1. */
  #expanders: SeedExpander[] | undefined;
  /** Seeds not expanded (yet): all of them until the aggregate passes expandAbove clients. */
  readonly #inputs: { seeds: Uint8Array; clients: number }[] = [];
  readonly #seen = new Set<string>();
  /** Frames added since the sums were last reduced mod q (float64 stays exact below 64). */
  #unreduced = 0;

  constructor(bundle: CoordinatorBundle, opts: { paramCount?: number; expandAbove?: number } = {}) {
    if (bundle && 'secretKey' in bundle) {
      throw new IcosflError('CRYPTO_SECRET_KEY_FORBIDDEN', 'the coordinator was handed an agent bundle with the secret key; give it the coordinator bundle');
    }
    this.#d = deriveParams(bundle.params);
    this.#expectParamCount = opts.paramCount;
    const expandAbove = opts.expandAbove ?? expandAboveClients(this.#d);
    if (!Number.isInteger(expandAbove) || expandAbove < 0) throw new RangeError(`UpdateAccumulator: expandAbove must be an integer ≥ 0, got ${opts.expandAbove}`);
    this.#expandAbove = expandAbove;
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
    const expanded = h.kind === KIND_EXPANDED;
    // A replayed update carries the same 64-byte random seed as its first copy; an expanded
    // aggregate the same first bytes of its (uniformly random) summed c1.
    const keyAt = expanded ? c1Offset(d, h, 0) : seedOffset(d, h, 0, 0);
    const key = Buffer.from(bytes.buffer, bytes.byteOffset + keyAt, SEED_BYTES).toString('base64');
    if (this.#seen.has(key)) throw new IcosflError('CRYPTO_DUPLICATE_UPDATE', 'this update (or an aggregate containing it) was already added');
    if (expanded) {
      // Its c1 residues are checked before anything is added, so a refusal leaves no trace.
      for (let j = 0; j < h.ciphertextCount; j++) checkResidues(d, bytes, c1Offset(d, h, j), j);
    }

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
    this.#seen.add(key);
    this.#header = acc
      ? { ...acc, clients: acc.clients + h.clients, totalSamples: acc.totalSamples + h.totalSamples }
      : { ...h, kind: KIND_AGGREGATE };
    if (expanded) {
      const c1 = this.#startExpanded(h.ciphertextCount);
      for (let j = 0; j < h.ciphertextCount; j++) addPacked47(bytes, c1Offset(d, h, j), d.n, d.q, c1, j * d.n);
    } else {
      // Copy the seeds: the caller may reuse its receive buffer once add() returns.
      const seedsStart = seedOffset(d, h, 0, 0);
      this.#inputs.push({ seeds: Uint8Array.prototype.slice.call(bytes, seedsStart, seedsStart + h.ciphertextCount * h.clients * SEED_BYTES), clients: h.clients });
    }
    if (!this.#expanders && this.#header.clients > this.#expandAbove) this.#startExpanded(h.ciphertextCount);
    if (this.#expanders) this.#expandPending();
    if (++this.#unreduced >= LAZY_ADDS) this.#reduce();
  }

  /** Switches to the expanded form (kind 3) if not yet: the c1 sum and one seed expander per ciphertext. */
  #startExpanded(ciphertextCount: number): Float64Array {
    const d = this.#d;
    this.#c1 ??= new Float64Array(ciphertextCount * d.n);
    this.#expanders ??= Array.from({ length: ciphertextCount }, () => new SeedExpander(d.n, d.q));
    return this.#c1;
  }

  /** Expands every seed still kept into the per-ciphertext expanders. */
  #expandPending(): void {
    const expanders = this.#expanders!;
    for (const input of this.#inputs) {
      for (let j = 0; j < expanders.length; j++) {
        for (let k = 0; k < input.clients; k++) {
          const at = (j * input.clients + k) * SEED_BYTES;
          expanders[j]!.add(input.seeds.subarray(at, at + SEED_BYTES));
        }
      }
    }
    this.#inputs.length = 0;
  }

  #reduce(): void {
    const q = this.#d.q;
    for (const s of [this.#sum, this.#c1]) if (s) for (let i = 0; i < s.length; i++) s[i] = s[i]! % q;
    this.#unreduced = 0;
  }

  /** The aggregate's wire bytes (kind 2, or kind 3 once expanded); the accumulator may keep adding afterwards. */
  finish(): Uint8Array {
    const h = this.#header;
    const sum = this.#sum;
    if (!h || !sum) throw new RangeError('UpdateAccumulator.finish: no update was added');
    const d = this.#d;
    this.#reduce();
    if (this.#c1 && this.#expanders) {
      const c1 = this.#c1;
      this.#expanders.forEach((e, j) => e.reduceInto(c1, j * d.n));
      const out = new Uint8Array(frameBytes(d, h.ciphertextCount, h.clients, KIND_EXPANDED));
      const hx = { ...h, kind: KIND_EXPANDED };
      writeHeader(out, d, hx);
      for (let j = 0; j < h.ciphertextCount; j++) {
        packFromFloat64(sum, j * d.n, d.n, d.qBits - 32, out, c0Offset(d, j));
        packFromFloat64(c1, j * d.n, d.n, d.qBits - 32, out, c1Offset(d, hx, j));
      }
      return out;
    }
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
  for (let j = 0; j < h.ciphertextCount; j++) checkResidues(d, bytes, c0Offset(d, j), j);
  if (h.kind === KIND_EXPANDED) for (let j = 0; j < h.ciphertextCount; j++) checkResidues(d, bytes, c1Offset(d, h, j), j);
  return h;
}

/** Every residue of the packed polynomial at `off` is below q (the adder's own check, into a scratch row). */
function checkResidues(d: DerivedParams, bytes: Uint8Array, off: number, j: number): void {
  let row = scratchRows.get(d.n);
  if (!row) scratchRows.set(d.n, (row = new Float64Array(d.n)));
  row.fill(0);
  const bad = addPacked47(bytes, off, d.n, d.q, row, 0);
  if (bad >= 0) throw residueOutOfRange(j * d.n + bad);
}

/** Sums encrypted updates (or partial aggregates) into one aggregate. */
export function aggregate(bundle: CoordinatorBundle, updates: readonly Uint8Array[], opts: { paramCount?: number; expandAbove?: number } = {}): Uint8Array {
  if (!Array.isArray(updates) || updates.length === 0) throw new RangeError('aggregate: updates must be a non-empty array of Uint8Array');
  const acc = new UpdateAccumulator(bundle, opts);
  for (const u of updates) acc.add(u);
  return acc.finish();
}
