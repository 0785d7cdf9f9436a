import { randomBytes } from 'node:crypto';

/**
 * Clipping and Gaussian noise for differentially private releases. Noise comes from node:crypto
 * (an unpredictable generator: a seeded Math.random-style PRNG would let whoever knows or guesses
 * the seed subtract the noise). Pure apart from that source, which tests may replace.
 */
export interface UniformSource {
  /** A uniform double in (0, 1], 53 random bits. */
  next(): number;
}

/** Uniform doubles from crypto.randomBytes, fetched 4 KiB at a time. */
export function cryptoUniform(): UniformSource {
  let buf = Buffer.alloc(0);
  let at = 0;
  return {
    next() {
      if (at + 8 > buf.length) {
        buf = randomBytes(4096);
        at = 0;
      }
      const hi = buf.readUInt32BE(at) >>> 5; // 27 bits
      const lo = buf.readUInt32BE(at + 4) >>> 6; // 26 bits
      at += 8;
      return (hi * 67108864 + lo + 1) / 9007199254740992; // (k + 1) / 2^53: never 0, so log(u) is finite
    },
  };
}

/** Standard normal draws by Box–Muller, two per pair of uniforms. */
export function standardNormals(n: number, source: UniformSource = cryptoUniform()): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(source.next()));
    const t = 2 * Math.PI * source.next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

export function l2Norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** v scaled by min(1, bound / ‖v‖₂) (a copy), and the norm before clipping. */
export function clipL2(v: ArrayLike<number>, bound: number): { clipped: Float64Array; norm: number } {
  if (!(bound > 0) || !Number.isFinite(bound)) throw new RangeError(`clip bound must be a positive number, got ${bound}`);
  const norm = l2Norm(v);
  if (!Number.isFinite(norm)) throw new RangeError('cannot clip a vector with non-finite entries');
  const scale = norm > bound ? bound / norm : 1;
  const clipped = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) clipped[i] = v[i]! * scale;
  return { clipped, norm };
}

/** v + N(0, std²) per coordinate, in place. */
export function addGaussianNoise(v: Float64Array, std: number, source: UniformSource = cryptoUniform()): Float64Array {
  if (!(std >= 0) || !Number.isFinite(std)) throw new RangeError(`noise standard deviation must be a number ≥ 0, got ${std}`);
  const z = standardNormals(v.length, source);
  for (let i = 0; i < v.length; i++) v[i]! += std * z[i]!;
  return v;
}

/**
 * The Gaussian mechanism on an update: base + clip(values − base, C) + N(0, (σC)²) per
 * coordinate. Without a base (statistics), the values themselves are clipped. What goes out has
 * sensitivity C whatever the agent's data (an agent's whole contribution moves it by ≤ C).
 */
export function privatise(values: Float32Array, opts: { clipNorm: number; noiseMultiplier: number; base?: Float32Array; source?: UniformSource }): { released: Float32Array; norm: number } {
  const { clipNorm, noiseMultiplier, base } = opts;
  if (base && base.length !== values.length) throw new RangeError(`base has ${base.length} values, the update ${values.length}`);
  const delta = base ? Float64Array.from(values, (v, i) => v - base[i]!) : values;
  const { clipped, norm } = clipL2(delta, clipNorm);
  addGaussianNoise(clipped, noiseMultiplier * clipNorm, opts.source);
  const released = base ? Float32Array.from(clipped, (d, i) => base[i]! + d) : Float32Array.from(clipped);
  return { released, norm };
}

/** Each value limited to ±limit in place; how many were. Applied after the noise, it is post-processing and costs no privacy. */
export function clampAbs(v: Float32Array, limit: number): number {
  if (!(limit > 0)) throw new RangeError(`clamp limit must be > 0, got ${limit}`);
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    if (v[i]! > limit) (v[i] = limit), n++;
    else if (v[i]! < -limit) (v[i] = -limit), n++;
  }
  return n;
}
