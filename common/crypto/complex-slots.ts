/**
 * Two real values per CKKS slot. SEAL's CKKSEncoder (as node-seal exposes it) encodes real
 * vectors only, so a ciphertext would carry N/2 parameters. But multiplying a plaintext polynomial
 * by X^(N/2) multiplies every slot by i: each slot is m(ζ) at a primitive 2N-th root ζ = ψ^(5^j),
 * and ζ^(N/2) = i^(5^j) = i because 5^j ≡ 1 (mod 4). So p = P(a) + X^(N/2)·P(b) holds a + i·b in
 * each slot: N real parameters per ciphertext, which halves wire bytes, encryptions (SEAL's PRNG
 * is most of their cost), the coordinator's additions and the decryptor's seed expansions.
 *
 * SEAL keeps plaintexts in NTT form: value j is m(ψ^(2·bitrev(j)+1)). There X^(N/2) is
 * ψ^((2k+1)·N/2) = I^(2k+1) for I = ψ^(N/2), a square root of -1 mod q: +I where bitrev(j) is
 * even (j < N/2) and -I where it is odd. So the product is a constant multiply per residue, done
 * here in float64 without BigInt. Which square root of -1 SEAL's ψ gives is settled by a self-test
 * in seal-session.ts; the other one yields -b, which the self-test rejects.
 */
function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

/** Both square roots of -1 mod a prime q ≡ 1 (mod 4). */
export function sqrtMinusOne(q: number): [number, number] {
  const Q = BigInt(q);
  for (let g = 2n; g < 1000n; g++) {
    if (modPow(g, (Q - 1n) / 2n, Q) === Q - 1n) {
      const root = modPow(g, (Q - 1n) / 4n, Q);
      return [Number(root), Number(Q - root)];
    }
  }
  throw new Error(`no quadratic non-residue found below 1000 for q=${q}`);
}

/**
 * Multiplying by a constant c without BigInt: x (47 bits) is cut into four 12-bit limbs x_k, and
 * c_k = c·2^(12k) mod q into 23/24-bit halves, so x·c ≡ H·2^24 + L with H = Σ x_k·c_k,hi < 2^37 and
 * L = Σ x_k·c_k,lo < 2^38, all exact in float64. H·2^24 = H1·2^47 + H0·2^24 ≡ H1·R + H0·2^24 with
 * R = 2^47 mod q, small because SEAL picks the largest 47-bit NTT prime (R = 81,919 for N=4096).
 * Table layout: [c_0..3 hi, c_0..3 lo, R].
 */
export function limbTable(c: number, q: number): Float64Array {
  const Q = BigInt(q);
  const r = Number((1n << 47n) % Q);
  if (q >= 2 ** 47 || r >= 2 ** 36) throw new RangeError(`limbTable: q=${q} must be below 2^47 and within 2^36 of it`);
  const table = new Float64Array(9);
  for (let k = 0; k < 4; k++) {
    const ck = Number((BigInt(c) << BigInt(12 * k)) % Q);
    const hi = Math.floor(ck / 2 ** 24);
    table[k] = hi;
    table[4 + k] = ck - hi * 2 ** 24;
  }
  table[8] = r;
  return table;
}

/**
 * dst[j] = a[j] + sign_j·c·b[j] mod q over N uint64 residues (little-endian), with sign_j = +1 for
 * j < N/2 and -1 above; `table` = limbTable(c, q). dst may alias a or b. Pass a = undefined to
 * compute dst[j] = sign_j·c·b[j] (multiplying one plaintext by ±i).
 */
export function mulAddConst(dst: Uint8Array, a: Uint8Array | undefined, b: Uint8Array, off: number, n: number, table: Float64Array, q: number): void {
  const dv = new DataView(dst.buffer, dst.byteOffset + off, n * 8);
  const av = a ? new DataView(a.buffer, a.byteOffset + off, n * 8) : undefined;
  const bv = new DataView(b.buffer, b.byteOffset + off, n * 8);
  const h0 = table[0]!, h1 = table[1]!, h2 = table[2]!, h3 = table[3]!;
  const l0 = table[4]!, l1 = table[5]!, l2 = table[6]!, l3 = table[7]!, r47 = table[8]!;
  const half = n / 2;
  for (let j = 0; j < n; j++) {
    const lo = bv.getUint32(j * 8, true);
    const hi = bv.getUint32(j * 8 + 4, true);
    const x0 = lo & 4095;
    const x1 = (lo >>> 12) & 4095;
    const x2 = (lo >>> 24) | ((hi & 15) << 8);
    const x3 = hi >>> 4;
    const H = x0 * h0 + x1 * h1 + x2 * h2 + x3 * h3;
    const L = x0 * l0 + x1 * l1 + x2 * l2 + x3 * l3;
    const H1 = Math.floor(H / 2 ** 23);
    const v = H1 * r47 + (H - H1 * 2 ** 23) * 2 ** 24 + L; // < 2^51: exact
    let p = v - Math.floor(v / q) * q; // (fmod is several times slower); the quotient may be off by one
    if (p < 0) p += q;
    else if (p >= q) p -= q;
    if (j >= half && p !== 0) p = q - p;
    if (av) {
      p += av.getUint32(j * 8, true) + av.getUint32(j * 8 + 4, true) * 2 ** 32;
      if (p >= q) p -= q;
    }
    const pHi = Math.floor(p / 2 ** 32);
    dv.setUint32(j * 8, p - pHi * 2 ** 32, true);
    dv.setUint32(j * 8 + 4, pHi, true);
  }
}
