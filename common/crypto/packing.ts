import { IcosflError } from '../errors.js';

/**
 * Bit-packing of one ciphertext polynomial (N residues < q < 2^(32+hiBits)).
 *
 * SEAL stores each residue as a uint64; on the wire we keep exactly 32 + hiBits bits: first the
 * N low 32-bit words (little-endian), then the N high parts as one little-endian bit stream of
 * hiBits each. Splitting at bit 32 keeps the hot loops to one aligned-or-not 32-bit read and a
 * small shift register, and every residue is < 2^53, so a double holds it (and sums of up to
 * 2^53/q of them) exactly. Pure functions; the wire module checks all lengths before calling.
 */
const TWO_32 = 2 ** 32;

export function packedBytes(n: number, hiBits: number): number {
  return n * 4 + Math.ceil((n * hiBits) / 8);
}

/** SEAL uint64 residues (little-endian at src[srcOff…]) → packed form at dst[dstOff…]. */
export function packFromUint64(src: Uint8Array, srcOff: number, n: number, hiBits: number, dst: Uint8Array, dstOff: number): void {
  const s = new DataView(src.buffer, src.byteOffset + srcOff, n * 8);
  const d = new DataView(dst.buffer, dst.byteOffset + dstOff, n * 4);
  let p = dstOff + n * 4;
  let acc = 0;
  let accBits = 0;
  for (let i = 0; i < n; i++) {
    d.setUint32(i * 4, s.getUint32(i * 8, true), true);
    acc |= s.getUint32(i * 8 + 4, true) << accBits;
    accBits += hiBits;
    while (accBits >= 8) {
      dst[p++] = acc & 0xff;
      acc >>>= 8;
      accBits -= 8;
    }
  }
  if (accBits > 0) dst[p] = acc & 0xff;
}

/** Residues from a Float64Array (each an exact integer in [0, q)) → packed form. */
export function packFromFloat64(src: Float64Array, srcOff: number, n: number, hiBits: number, dst: Uint8Array, dstOff: number): void {
  const d = new DataView(dst.buffer, dst.byteOffset + dstOff, n * 4);
  let p = dstOff + n * 4;
  let acc = 0;
  let accBits = 0;
  for (let i = 0; i < n; i++) {
    const v = src[srcOff + i]!;
    const hi = Math.floor(v / TWO_32);
    d.setUint32(i * 4, v - hi * TWO_32, true);
    acc |= hi << accBits;
    accBits += hiBits;
    while (accBits >= 8) {
      dst[p++] = acc & 0xff;
      acc >>>= 8;
      accBits -= 8;
    }
  }
  if (accBits > 0) dst[p] = acc & 0xff;
}

/**
 * The coordinator's hot loop: acc[accOff + i] += residue_i for a packed polynomial with hiBits = 15
 * (q < 2^47, the only modulus params.ts allows), WITHOUT reducing mod q: residues < 2^47, so a
 * float64 holds the exact sum of up to 64 of them and the caller reduces every LAZY_ADDS frames.
 * Unrolled eight residues (15 bytes of high bits) at a time; ≈ 4× the generic bit loop.
 * Checks each residue is < q; returns the index of the first bad one (having added only those
 * before it, which the caller takes back with subPacked), or -1.
 */
export const LAZY_ADDS = 63;

export function addPacked47(src: Uint8Array, off: number, n: number, q: number, acc: Float64Array, accOff: number): number {
  if (n % 8 !== 0) throw new RangeError('addPacked47: n must be a multiple of 8');
  const lo = (src.byteOffset + off) % 4 === 0 ? new Uint32Array(src.buffer, src.byteOffset + off, n) : new Uint32Array(Uint8Array.prototype.slice.call(src, off, off + n * 4).buffer);
  const mask = 0x7fff;
  const qHi = Math.floor(q / TWO_32);
  const qLo = q - qHi * TWO_32;
  let p = off + n * 4;
  for (let i = 0; i < n; i += 8) {
    const b0 = src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24);
    const b1 = src[p + 4]! | (src[p + 5]! << 8) | (src[p + 6]! << 16) | (src[p + 7]! << 24);
    const b2 = src[p + 8]! | (src[p + 9]! << 8) | (src[p + 10]! << 16) | (src[p + 11]! << 24);
    const b3 = src[p + 12]! | (src[p + 13]! << 8) | (src[p + 14]! << 16);
    p += 15;
    const h0 = b0 & mask;
    const h1 = (b0 >>> 15) & mask;
    const h2 = ((b0 >>> 30) | (b1 << 2)) & mask;
    const h3 = (b1 >>> 13) & mask;
    const h4 = ((b1 >>> 28) | (b2 << 4)) & mask;
    const h5 = (b2 >>> 11) & mask;
    const h6 = ((b2 >>> 26) | (b3 << 6)) & mask;
    const h7 = (b3 >>> 9) & mask;
    // A residue can only reach q when its high part is ≥ q's; rare, so check those one by one.
    if (h0 >= qHi || h1 >= qHi || h2 >= qHi || h3 >= qHi || h4 >= qHi || h5 >= qHi || h6 >= qHi || h7 >= qHi) {
      const hs = [h0, h1, h2, h3, h4, h5, h6, h7];
      for (let k = 0; k < 8; k++) {
        if (hs[k]! > qHi || (hs[k] === qHi && lo[i + k]! >= qLo)) {
          for (let m = 0; m < k; m++) acc[accOff + i + m]! += hs[m]! * TWO_32 + lo[i + m]!;
          return i + k;
        }
      }
    }
    const a = accOff + i;
    acc[a]! += h0 * TWO_32 + lo[i]!;
    acc[a + 1]! += h1 * TWO_32 + lo[i + 1]!;
    acc[a + 2]! += h2 * TWO_32 + lo[i + 2]!;
    acc[a + 3]! += h3 * TWO_32 + lo[i + 3]!;
    acc[a + 4]! += h4 * TWO_32 + lo[i + 4]!;
    acc[a + 5]! += h5 * TWO_32 + lo[i + 5]!;
    acc[a + 6]! += h6 * TWO_32 + lo[i + 6]!;
    acc[a + 7]! += h7 * TWO_32 + lo[i + 7]!;
  }
  return -1;
}

/** Takes back what addPacked47 added for residues [0, count): exact, as nothing was reduced. */
export function subPacked(src: Uint8Array, off: number, n: number, hiBits: number, acc: Float64Array, accOff: number, count: number): void {
  const lo = new DataView(src.buffer, src.byteOffset + off, n * 4);
  const mask = (1 << hiBits) - 1;
  let p = off + n * 4;
  let bits = 0;
  let nbits = 0;
  for (let i = 0; i < count; i++) {
    while (nbits < hiBits) {
      bits |= src[p++]! << nbits;
      nbits += 8;
    }
    acc[accOff + i]! -= (bits & mask) * TWO_32 + lo.getUint32(i * 4, true);
    bits >>>= hiBits;
    nbits -= hiBits;
  }
}

export function residueOutOfRange(i: number): IcosflError {
  return new IcosflError('CRYPTO_MALFORMED_UPDATE', `ciphertext residue ${i} is not below the coefficient modulus`, { details: { residue: i } });
}

/** Packed form → SEAL uint64 residues (little-endian at dst[dstOff…]); checks each is < q (errors count from indexBase). */
export function unpackToUint64(src: Uint8Array, off: number, n: number, hiBits: number, q: number, dst: Uint8Array, dstOff: number, indexBase = 0): void {
  const lo = new DataView(src.buffer, src.byteOffset + off, n * 4);
  const d = new DataView(dst.buffer, dst.byteOffset + dstOff, n * 8);
  const mask = (1 << hiBits) - 1;
  let p = off + n * 4;
  let bits = 0;
  let nbits = 0;
  for (let i = 0; i < n; i++) {
    while (nbits < hiBits) {
      bits |= src[p++]! << nbits;
      nbits += 8;
    }
    const hi = bits & mask;
    const l = lo.getUint32(i * 4, true);
    bits >>>= hiBits;
    nbits -= hiBits;
    if (hi * TWO_32 + l >= q) throw residueOutOfRange(indexBase + i);
    d.setUint32(i * 8, l, true);
    d.setUint32(i * 8 + 4, hi, true);
  }
}
