/**
 * Rényi differential privacy of the Poisson-subsampled Gaussian mechanism and its conversion to
 * (ε, δ): the analysis of TF-Privacy's rdp_accountant.py and Opacus's accountants/analysis/rdp.py
 * (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"),
 * written again for TypeScript. Pure: numbers in, numbers out.
 *
 * One step releases f(D) + N(0, σ²C²) where each record (here: an agent) is in D with
 * probability q and f has L2 sensitivity C under add/remove of one record; σ is the noise
 * multiplier. RDP composes by addition over steps.
 */

/** The orders α Opacus's RDPAccountant uses (DEFAULT_ALPHAS): 1.1 … 10.9 by tenths, then 12 … 63. */
export const RDP_ORDERS: readonly number[] = Object.freeze([...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10), ...Array.from({ length: 52 }, (_, i) => 12 + i)]);

function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(exp(x) − exp(y)) for x ≥ y. */
function logSub(x: number, y: number): number {
  if (y === -Infinity) return x;
  if (x <= y) return -Infinity; // equal terms cancel; x < y only by rounding, as in TF-Privacy
  return Math.log(Math.expm1(x - y)) + y;
}

/**
 * log erfc(x) for every real x, without underflow: a power series for |x| < 2, a continued
 * fraction (Lentz) above, where erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …)))).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 2) {
    // erf(x) = 2/√π Σ (−1)ⁿ x^{2n+1} / (n! (2n+1))
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.log1p((-2 / Math.sqrt(Math.PI)) * sum);
  }
  // Modified Lentz for the continued fraction x + a₁/(x + a₂/(x + …)), aₖ = k/2.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - 0.5 * Math.log(Math.PI) - Math.log(f);
}

/** log A_α for integer α: Σᵢ C(α,i) (1−q)^{α−i} qⁱ e^{(i²−i)/(2σ²)}. */
function logAInteger(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(α, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * Math.log(q) + (alpha - i) * Math.log1p(-q) + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_α for fractional α: the two tails of the integral split at z₀, summed until the terms fall below e^{−30}. */
function logAFractional(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  let logAbsBinom = 0; // log |C(α, i)|
  let positive = true; // sign of C(α, i)
  for (let i = 0; ; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i;
      logAbsBinom += Math.log(Math.abs(factor));
      if (factor < 0) positive = !positive;
    }
    const j = alpha - i;
    const logT0 = logAbsBinom + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logAbsBinom + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (positive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30 || i > 10_000) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP at order α of one step of the subsampled Gaussian mechanism (q = 1: the Gaussian mechanism, α/(2σ²)). */
export function rdpOfStep(q: number, sigma: number, alpha: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sampling rate must be in [0, 1], got ${q}`);
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`noise multiplier must be a positive number, got ${sigma}`);
  if (!(alpha > 1)) throw new RangeError(`RDP order must be > 1, got ${alpha}`);
  if (q === 0) return 0;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP at each order after `steps` steps (composition adds). */
export function rdpOfSteps(q: number, sigma: number, steps: number, orders: readonly number[] = RDP_ORDERS): number[] {
  if (!(Number.isInteger(steps) && steps >= 0)) throw new RangeError(`steps must be an integer ≥ 0, got ${steps}`);
  return orders.map((a) => steps * rdpOfStep(q, sigma, a));
}

export interface PrivacySpent {
  epsilon: number;
  delta: number;
  /** The order the minimum was taken at. */
  order: number;
}

/**
 * (ε, δ) from RDP, minimised over the orders, with the conversion Opacus's get_privacy_spent and
 * TF-Privacy's compute_eps use (Balle et al. 2020, "Hypothesis testing interpretations and Rényi
 * differential privacy", Theorem 21): ε = RDP_α + log((α−1)/α) − (log δ + log α)/(α−1).
 */
export function epsilonFromRdp(rdp: readonly number[], delta: number, orders: readonly number[] = RDP_ORDERS): PrivacySpent {
  return minimise(rdp, delta, orders, (r, a) => r + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1));
}

/** The classic conversion (Mironov 2017, Proposition 3): ε = RDP_α + log(1/δ)/(α−1); looser, kept for comparison. */
export function epsilonFromRdpClassic(rdp: readonly number[], delta: number, orders: readonly number[] = RDP_ORDERS): PrivacySpent {
  return minimise(rdp, delta, orders, (r, a) => r + Math.log(1 / delta) / (a - 1));
}

function minimise(rdp: readonly number[], delta: number, orders: readonly number[], eps: (r: number, a: number) => number): PrivacySpent {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  if (rdp.length !== orders.length) throw new RangeError(`${rdp.length} RDP values for ${orders.length} orders`);
  // Nothing released (RDP 0 at every order) is ε 0; the conversion's slack alone would say ~0.1.
  if (rdp.every((r) => r === 0)) return { epsilon: 0, delta, order: orders[0] ?? NaN };
  let best: PrivacySpent = { epsilon: Infinity, delta, order: orders[0] ?? NaN };
  for (let k = 0; k < orders.length; k++) {
    const e = Math.max(0, eps(rdp[k]!, orders[k]!));
    if (e < best.epsilon) best = { epsilon: e, delta, order: orders[k]! };
  }
  return best;
}
