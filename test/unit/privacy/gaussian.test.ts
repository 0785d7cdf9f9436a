import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addGaussianNoise, clampAbs, clipL2, cryptoUniform, l2Norm, privatise, standardNormals } from '../../../common/privacy/gaussian.js';

// With n draws the sample mean has standard error s/√n and the sample std about s/√(2n); the
// bounds below are 5 standard errors, so a correct generator fails about once in 10⁶ runs and a
// scale off by 10 % fails always.
const N = 200_000;

function moments(v: ArrayLike<number>): { mean: number; std: number; kurtosis: number } {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i]!;
  m /= v.length;
  let s2 = 0;
  let s4 = 0;
  for (let i = 0; i < v.length; i++) {
    const d = (v[i]! - m) ** 2;
    s2 += d;
    s4 += d * d;
  }
  s2 /= v.length;
  s4 /= v.length;
  return { mean: m, std: Math.sqrt(s2), kurtosis: s4 / (s2 * s2) };
}

test('crypto uniforms lie in (0, 1] with mean ½ and variance 1/12', () => {
  const u = cryptoUniform();
  const xs = Array.from({ length: N }, () => u.next());
  assert.ok(xs.every((x) => x > 0 && x <= 1));
  const { mean, std } = moments(xs);
  assert.ok(Math.abs(mean - 0.5) < 5 * Math.sqrt(1 / 12 / N), `mean ${mean}`);
  assert.ok(Math.abs(std - Math.sqrt(1 / 12)) < 0.002, `std ${std}`);
});

test('standard normals: mean 0, std 1, kurtosis 3, and two runs differ (no fixed seed)', () => {
  const z = standardNormals(N);
  const { mean, std, kurtosis } = moments(z);
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(N), `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 5 / Math.sqrt(2 * N), `std ${std}`);
  assert.ok(Math.abs(kurtosis - 3) < 0.06, `kurtosis ${kurtosis}`);
  const within1 = z.filter((x) => Math.abs(x) < 1).length / N;
  assert.ok(Math.abs(within1 - 0.6826894921) < 0.005, `P(|z| < 1) = ${within1}`);
  assert.not.equal(Array.from(standardNormals(8)), Array.from(standardNormals(8)));
});

test('clipping scales a long vector to the bound and leaves a short one alone', () => {
  const long = clipL2([3, 4], 1);
  assert.is(long.norm, 5);
  assert.ok(Math.abs(l2Norm(long.clipped) - 1) < 1e-15);
  assert.ok(Math.abs(long.clipped[0]! / long.clipped[1]! - 0.75) < 1e-15, 'direction kept');
  const short = clipL2([0.3, 0.4], 1);
  assert.equal(Array.from(short.clipped), [0.3, 0.4]);
  assert.throws(() => clipL2([1], 0), /clip bound must be a positive number/);
  assert.throws(() => clipL2([NaN], 1), /non-finite/);
  assert.throws(() => addGaussianNoise(new Float64Array(1), -1), /noise standard deviation/);
});

test('clampAbs limits each value to ±limit and counts them', () => {
  const v = Float32Array.from([-20, -3, 0, 15.5, 40]);
  assert.is(clampAbs(v, 16), 2);
  assert.equal(Array.from(v), [-16, -3, 0, 15.5, 16]);
  assert.is(clampAbs(v, Infinity), 0);
  assert.throws(() => clampAbs(v, 0), /clamp limit must be > 0/);
});

test('privatise: base + clip(Δ, C) + N(0, (σC)²); the noise has the scale the accountant assumes', () => {
  const n = N;
  const base = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  // Δ of norm 10 in every coordinate alike, clipped to C = 2: each coordinate of clip(Δ) is 2/√n.
  const delta = 10 / Math.sqrt(n);
  const values = Float32Array.from(base, (b) => b + delta);
  const C = 2;
  const sigma = 1.5;
  const { released, norm } = privatise(values, { clipNorm: C, noiseMultiplier: sigma, base });
  assert.ok(Math.abs(norm - 10) < 1e-3, `norm before clipping ${norm}`);
  const noise = Float64Array.from(released, (r, i) => r - base[i]! - C / Math.sqrt(n));
  const { mean, std } = moments(noise);
  const want = sigma * C;
  assert.ok(Math.abs(mean) < (5 * want) / Math.sqrt(n), `noise mean ${mean}`);
  assert.ok(Math.abs(std - want) < (5 * want) / Math.sqrt(2 * n), `noise std ${std}, want ${want}`);
  // Statistics (no base): the values themselves are clipped.
  const stats = privatise(Float32Array.from([30, 40]), { clipNorm: 1, noiseMultiplier: 1e-9 });
  assert.ok(Math.abs(stats.released[0]! - 0.6) < 1e-6 && Math.abs(stats.released[1]! - 0.8) < 1e-6);
  assert.throws(() => privatise(values, { clipNorm: 1, noiseMultiplier: 1, base: base.subarray(1) }), /base has/);
});

test.run();
