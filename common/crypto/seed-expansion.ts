/**
 * SEAL's expansion of a 64-byte ciphertext seed into the c1 polynomial, reimplemented so the
 * coordinator's adders can sum c1 polynomials without loading SEAL (wire.ts, kind 3). c1 is public
 * randomness: nothing here touches a key. Bit-exact with SEAL 4.1 (a test compares it with SEAL's
 * own expansion, rejections included):
 *
 *   stream  = Blake2xb(out 4096 bytes, key = seed, message = counter as uint64 LE) for counter 0, 1, …
 *             (SEAL's Blake2xbPRNG::refill_buffer; the reference BLAKE2X construction)
 *   c1[i]   = (uint64 LE from the stream) mod q, in order, N of them read first; a value ≥
 *             2^64 − 1 − ((2^64 − 1) mod q) − 1 is redrawn from the stream after those N
 *             (sample_poly_uniform, util/rlwe.cpp); CKKS ciphertexts are in NTT form, which is
 *             how SEAL samples c1, so no transform follows.
 *
 * Instead of reducing each draw, SeedExpander adds the draws' 32-bit halves into two float64 sums
 * (exact below 2^21 seeds) and reduces once at the end: Σ (r mod q) ≡ Σ r (mod q).
 */
import { SEED_BYTES } from './params.js';

const STREAM_BLOCK_BYTES = 4096;
const OUT_NODE_BYTES = 64;
const NODES_PER_BLOCK = STREAM_BLOCK_BYTES / OUT_NODE_BYTES;
/** Draws per node: eight uint64 words. */
const WORDS_PER_NODE = OUT_NODE_BYTES / 8;
const TWO_32 = 2 ** 32;
/** The hi/lo sums stay exact while Σ < 2^53: 2^21 seeds of 32-bit halves. */
export const MAX_EXPANDED_SEEDS = 2 ** 21;

// BLAKE2b's IV as 32-bit halves, low word first.
const IV = new Uint32Array([
  0xf3bcc908, 0x6a09e667, 0x84caa73b, 0xbb67ae85, 0xfe94f82b, 0x3c6ef372, 0x5f1d36f1, 0xa54ff53a, 0xade682d1, 0x510e527f, 0x2b3e6c1f, 0x9b05688c, 0xfb41bd6b, 0x1f83d9ab, 0x137e2179,
  0x5be0cd19,
]);

const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];
/*
 * The compression function, its 12 rounds unrolled over 32 local 32-bit halves (v0l, v0h, …) and
 * generated once from SIGMA at load: with the working vector in locals V8 keeps it in registers,
 * about 6× a loop over a Uint32Array (3 ms → 0.5 ms per expanded seed).
 */
function gSource(a: number, b: number, c: number, d: number, x: number, y: number): string {
  const [A, B, C, D] = [a, b, c, d].map((i) => `v${i}`);
  const add3 = (p: string, q: string, m: string) => `t=${p}l+${q}l+${m}l;${p}h=(${p}h+${q}h+${m}h+(t/4294967296|0))>>>0;${p}l=t>>>0;`;
  const add2 = (p: string, q: string) => `t=${p}l+${q}l;${p}h=(${p}h+${q}h+(t/4294967296|0))>>>0;${p}l=t>>>0;`;
  const xor = (p: string, q: string) => `xl=${p}l^${q}l;xh=${p}h^${q}h;`;
  const rotr = (p: string, r: number) =>
    r === 32 ? `${p}l=xh>>>0;${p}h=xl>>>0;` : r < 32 ? `${p}l=((xl>>>${r})|(xh<<${32 - r}))>>>0;${p}h=((xh>>>${r})|(xl<<${32 - r}))>>>0;` : `${p}l=((xh>>>${r - 32})|(xl<<${64 - r}))>>>0;${p}h=((xl>>>${r - 32})|(xh<<${64 - r}))>>>0;`;
  return [add3(A!, B!, `m${x}`), xor(D!, A!), rotr(D!, 32), add2(C!, D!), xor(B!, C!), rotr(B!, 24), add3(A!, B!, `m${y}`), xor(D!, A!), rotr(D!, 16), add2(C!, D!), xor(B!, C!), rotr(B!, 63)].join('');
}

function compressSource(): string {
  const lines: string[] = ['let t=0,xl=0,xh=0;'];
  for (let i = 0; i < 16; i++) lines.push(`const m${i}l=m[${2 * i}],m${i}h=m[${2 * i + 1}];`);
  for (let i = 0; i < 8; i++) lines.push(`let v${i}l=h[${2 * i}],v${i}h=h[${2 * i + 1}];`);
  for (let i = 0; i < 8; i++) lines.push(`let v${i + 8}l=${IV[2 * i]},v${i + 8}h=${IV[2 * i + 1]};`);
  lines.push('v12l=(v12l^t0)>>>0;', 'if(last){v14l=(~v14l)>>>0;v14h=(~v14h)>>>0;}');
  for (let r = 0; r < 12; r++) {
    const s = SIGMA[r % 10]!;
    const cols = [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15], [0, 5, 10, 15], [1, 6, 11, 12], [2, 7, 8, 13], [3, 4, 9, 14]];
    cols.forEach(([a, b, c, d], k) => lines.push(gSource(a!, b!, c!, d!, s[2 * k]!, s[2 * k + 1]!)));
  }
  for (let i = 0; i < 8; i++) lines.push(`h[${2 * i}]=h[${2 * i}]^v${i}l^v${i + 8}l;h[${2 * i + 1}]=h[${2 * i + 1}]^v${i}h^v${i + 8}h;`);
  return lines.join('\n');
}

/** One BLAKE2b compression of the 16-word block `m` (32 halves) into h (16 halves); t0: bytes so far (< 2^32 here). */
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from the constants above, never from input
const compress = new Function('h', 'm', 't0', 'last', compressSource()) as (h: Uint32Array, m: Uint32Array, t0: number, last: boolean) => void;

/** h = IV ^ parameter block (words 0, 1 and 2 given as halves; the rest of the block is zero). */
function initState(h: Uint32Array, p0lo: number, p0hi: number, p1lo: number, p1hi: number, p2lo: number): void {
  h.set(IV);
  h[0] = (h[0]! ^ p0lo) >>> 0;
  h[1] = (h[1]! ^ p0hi) >>> 0;
  h[2] = (h[2]! ^ p1lo) >>> 0;
  h[3] = (h[3]! ^ p1hi) >>> 0;
  h[4] = (h[4]! ^ p2lo) >>> 0;
}

function u32le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/**
 * SEAL's UniformRandomGenerator over Blake2xb for one seed, yielding uint64 draws as (hi, lo)
 * halves. Each 4096-byte block is 64 output nodes; nodes are computed when first read.
 */
class Blake2xbStream {
  readonly #keyBlock = new Uint32Array(32);
  readonly #msg = new Uint32Array(32);
  readonly #root = new Uint32Array(16);
  readonly #node = new Uint32Array(16);
  #counter = 0;
  #nodeIndex = NODES_PER_BLOCK;
  #word = WORDS_PER_NODE;

  constructor(seed: Uint8Array) {
    if (seed.length !== SEED_BYTES) throw new RangeError(`seed must be ${SEED_BYTES} bytes, got ${seed.length}`);
    for (let i = 0; i < 16; i++) this.#keyBlock[i] = u32le(seed, i * 4);
  }

  #refill(): void {
    // Root: digest 64, key 64, fanout 1, depth 1, xof_length 4096; message = key block ‖ counter.
    const root = this.#root;
    initState(root, 0x01014040, 0, 0, STREAM_BLOCK_BYTES, 0);
    compress(root, this.#keyBlock.subarray(0, 32), 128, false);
    const m = this.#msg;
    m.fill(0);
    m[0] = this.#counter >>> 0;
    m[1] = Math.floor(this.#counter / TWO_32);
    compress(root, m, 136, true);
    this.#counter++;
    this.#nodeIndex = 0;
  }

  #nextNode(): void {
    if (this.#nodeIndex === NODES_PER_BLOCK) this.#refill();
    // Node i: digest 64, key 0, fanout 0, depth 0, leaf_length 64, node_offset i, xof_length 4096, inner_length 64; message = root.
    const h = this.#node;
    initState(h, 64, 64, this.#nodeIndex, STREAM_BLOCK_BYTES, 64 << 8);
    const m = this.#msg;
    m.fill(0);
    m.set(this.#root, 0);
    compress(h, m, 64, true);
    this.#nodeIndex++;
    this.#word = 0;
  }

  /** Low and high 32 bits of the next uint64 draw, into out[0], out[1]. */
  next(out: Float64Array | Uint32Array): void {
    if (this.#word === WORDS_PER_NODE) this.#nextNode();
    out[0] = this.#node[this.#word * 2]!;
    out[1] = this.#node[this.#word * 2 + 1]!;
    this.#word++;
  }

  /** The eight draws of the next node at once (the hot path), as (lo, hi) halves. */
  node(): Uint32Array {
    this.#nextNode();
    this.#word = WORDS_PER_NODE;
    return this.#node;
  }
}

/** 2^64 − 1 − ((2^64 − 1) mod q) − 1 as 32-bit halves: draws at or above it are redrawn. */
function rejectionBound(q: number): { hi: number; lo: number } {
  const max = 2n ** 64n - 1n;
  const bound = max - (max % BigInt(q)) - 1n;
  return { hi: Number(bound >> 32n), lo: Number(bound & 0xffffffffn) };
}

/** (x · k) mod q for x < q and x · k < 2^53: the quotient from a float division, corrected by one step. */
function mulMod(x: number, k: number, q: number): number {
  const y = x * k;
  let r = y - Math.floor(y / q) * q;
  if (r < 0) r += q;
  else if (r >= q) r -= q;
  return r;
}

/**
 * Sums the c1 polynomials of many seeds mod q. `add(seed)` expands one; `reduceInto(dst, off)`
 * adds Σ c1 mod q into dst[off … off+n) (exact integers < 2^53, so the caller's float64 sums stay
 * exact) and clears the sums.
 */
export class SeedExpander {
  readonly #n: number;
  readonly #q: number;
  readonly #bound: { hi: number; lo: number };
  readonly #hi: Float64Array;
  readonly #lo: Float64Array;
  #seeds = 0;
  #redraws = 0;

  constructor(n: number, q: number) {
    if (!Number.isInteger(n) || n < 8 || n % WORDS_PER_NODE !== 0) throw new RangeError(`SeedExpander: n must be a positive multiple of ${WORDS_PER_NODE}, got ${n}`);
    // Below 2^52 every step of reduceInto stays exact in a double.
    if (!Number.isSafeInteger(q) || q <= TWO_32 || q >= 2 ** 52) throw new RangeError(`SeedExpander: q must be an integer in (2^32, 2^52), got ${q}`);
    this.#n = n;
    this.#q = q;
    this.#bound = rejectionBound(q);
    this.#hi = new Float64Array(n);
    this.#lo = new Float64Array(n);
  }

  get seeds(): number {
    return this.#seeds;
  }

  /** Draws refused and redrawn so far (about 3 % of seeds need one at q ≈ 2^47; tests look for them). */
  get redraws(): number {
    return this.#redraws;
  }

  add(seed: Uint8Array): void {
    if (this.#seeds >= MAX_EXPANDED_SEEDS) throw new RangeError(`SeedExpander: more than ${MAX_EXPANDED_SEEDS} seeds in one sum`);
    const stream = new Blake2xbStream(seed);
    const { hi: bHi, lo: bLo } = this.#bound;
    const sumHi = this.#hi;
    const sumLo = this.#lo;
    const n = this.#n;
    let rejected: number[] | undefined;
    for (let i = 0; i < n; i += WORDS_PER_NODE) {
      const w = stream.node();
      for (let k = 0; k < WORDS_PER_NODE; k++) {
        const lo = w[2 * k]!;
        const hi = w[2 * k + 1]!;
        if (hi > bHi || (hi === bHi && lo >= bLo)) {
          (rejected ??= []).push(i + k);
          this.#redraws++;
        }
        else {
          sumHi[i + k]! += hi;
          sumLo[i + k]! += lo;
        }
      }
    }
    if (rejected) {
      // Redraws come from the stream after the N bulk draws, in coefficient order.
      const draw = new Uint32Array(2);
      for (const i of rejected) {
        for (let tries = 0; ; tries++) {
          if (tries > 64) throw new Error('SeedExpander: 64 rejections in a row (broken PRNG?)');
          stream.next(draw);
          const [lo, hi] = [draw[0]!, draw[1]!];
          if (hi > bHi || (hi === bHi && lo >= bLo)) {
            this.#redraws++;
            continue;
          }
          sumHi[i]! += hi;
          sumLo[i]! += lo;
          break;
        }
      }
    }
    this.#seeds++;
  }

  /** dst[off + i] = (dst[off + i] + Σ c1[i]) mod q; then the sums start again from zero. */
  reduceInto(dst: Float64Array, off: number): void {
    const q = this.#q;
    const step = 53 - Math.ceil(Math.log2(q + 1));
    for (let i = 0; i < this.#n; i++) {
      // (Σhi·2^32 + Σlo) mod q: Σhi mod q shifted left 32 bits in steps that keep each product < 2^53 (6 bits at q < 2^47).
      let x = this.#hi[i]! % q;
      for (let bits = 32; bits > 0; bits -= step) x = mulMod(x, 2 ** Math.min(step, bits), q);
      let r = (dst[off + i]! % q) + x;
      if (r >= q) r -= q;
      r += this.#lo[i]! % q;
      dst[off + i] = r >= q ? r - q : r;
    }
    this.#hi.fill(0);
    this.#lo.fill(0);
    this.#seeds = 0;
  }
}

/** The c1 polynomial of one seed as residues (tests and tools; the adders use SeedExpander). */
export function expandSeed(seed: Uint8Array, n: number, q: number): Float64Array {
  const e = new SeedExpander(n, q);
  e.add(seed);
  const out = new Float64Array(n);
  e.reduceInto(out, 0);
  return out;
}
