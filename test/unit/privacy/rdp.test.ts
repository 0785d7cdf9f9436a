import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { epsilonFromRdp, epsilonFromRdpClassic, logErfc, RDP_ORDERS, rdpOfStep, rdpOfSteps } from '../../../common/privacy/rdp.js';
import { epsilonOfOneStep, PrivacyAccountant } from '../../../common/privacy/accountant.js';

const close = (got: number, want: number, tol: number, what: string) => assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

test("the orders are Opacus's DEFAULT_ALPHAS: 1.1 … 10.9 by tenths, then 12 … 63", () => {
  assert.is(RDP_ORDERS.length, 99 + 52);
  close(RDP_ORDERS[0]!, 1.1, 1e-12, 'first');
  close(RDP_ORDERS[98]!, 10.9, 1e-12, 'last fractional');
  assert.is(RDP_ORDERS[99], 12);
  assert.is(RDP_ORDERS[RDP_ORDERS.length - 1], 63);
});

test('log erfc matches erfc at reference points, also where erfc underflows', () => {
  // erfc values from the error function tables (Abramowitz & Stegun 7.1) / scipy.special.erfc
  const cases: [number, number][] = [[0, 1], [0.5, 0.4795001221869535], [1, 0.15729920705028513], [2, 0.004677734981047266], [5, 1.5374597944280349e-12], [10, 2.088487583762545e-45], [-0.5, 1.5204998778130465], [-3, 1.9999779095030015]];
  for (const [x, erfc] of cases) close(logErfc(x), Math.log(erfc), 1e-12 * Math.max(1, Math.abs(Math.log(erfc))), `log erfc(${x})`);
  // erfc(30) ≈ 2.56e-393 is below double range; log erfc(30) = −900 − log(30√π) − 1/1800 + …
  close(logErfc(30), -903.9741171106442, 1e-9, 'log erfc(30)');
});

test('q = 1 is the Gaussian mechanism: RDP α/(2σ²) at every order, integer and fractional', () => {
  for (const sigma of [0.7, 1, 4]) for (const a of [1.5, 2, 3.7, 32]) close(rdpOfStep(1, sigma, a), a / (2 * sigma * sigma), 1e-15, `σ ${sigma} α ${a}`);
  // ε of T Gaussian steps at order α by the Balle et al. conversion, minimised by hand at the best listed order.
  const sigma = 4;
  const T = 100;
  const delta = 1e-5;
  const byHand = Math.min(...RDP_ORDERS.map((a) => (T * a) / (2 * sigma * sigma) + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1)));
  close(epsilonFromRdp(rdpOfSteps(1, sigma, T), delta).epsilon, byHand, 1e-12, 'ε of 100 Gaussian steps');
});

test('order 2 has the closed form log(1 + q²(e^{1/σ²} − 1))', () => {
  for (const [q, sigma] of [[0.04, 1.5], [0.3, 0.8], [0.9, 3]] as const) close(rdpOfStep(q, sigma, 2), Math.log1p(q * q * Math.expm1(1 / (sigma * sigma))), 1e-14, `q ${q} σ ${sigma}`);
});

test('Opacus: σ 1.5, q 0.04, 2,250 steps, δ 1e-5 gives ε ≈ 7.33 with the improved conversion (8.07 with the classic one)', () => {
  const rdp = rdpOfSteps(0.04, 1.5, 2250);
  const spent = epsilonFromRdp(rdp, 1e-5);
  close(spent.epsilon, 7.33, 0.005, 'improved (Balle et al. 2020)');
  close(spent.order, 3.9, 1e-12, 'best order');
  close(epsilonFromRdpClassic(rdp, 1e-5).epsilon, 8.07, 0.005, 'classic (Mironov 2017)');
});

test("fractional and integer orders agree with TF-Privacy's algorithm (values from its rdp_accountant in scipy)", () => {
  close(rdpOfStep(0.04, 1.5, 2.5), 0.0011328034664240456, 1e-15, 'α 2.5');
  close(rdpOfStep(0.04, 1.5, 3), 0.00137687239217031, 1e-15, 'α 3');
  close(rdpOfStep(0.04, 1.5, 32), 3.788426314311532, 1e-12, 'α 32');
  close(rdpOfStep(0.5, 2, 1.5), 0.04981937763232103, 1e-12, 'α 1.5');
  close(epsilonFromRdp(rdpOfSteps(0.01, 1.1, 10_000), 1e-5).epsilon, 5.63199236854841, 1e-9, 'q 0.01 σ 1.1 10,000 steps');
  // RDP grows with q and falls with σ, and subsampling never costs more than the full Gaussian.
  assert.ok(rdpOfStep(0.1, 1, 4) < rdpOfStep(0.2, 1, 4) && rdpOfStep(0.2, 2, 4) < rdpOfStep(0.2, 1, 4));
  assert.ok(rdpOfStep(0.5, 1, 7.5) <= rdpOfStep(1, 1, 7.5));
  assert.is(rdpOfStep(0, 1, 4), 0);
});

test('the accountant composes groups by addition and prices one more step', () => {
  const acc = new PrivacyAccountant();
  acc.compose(1, 6, 60);
  acc.compose(1, 6, 40);
  assert.equal(acc.history(), [{ samplingRate: 1, noiseMultiplier: 6, steps: 100 }]);
  close(acc.spent(1e-5).epsilon, epsilonFromRdp(rdpOfSteps(1, 6, 100), 1e-5).epsilon, 1e-12, 'grouped = at once');
  acc.compose(0.5, 2, 10);
  assert.is(acc.history().length, 2);
  const mixed = rdpOfSteps(1, 6, 100).map((r, k) => r + rdpOfSteps(0.5, 2, 10)[k]!);
  close(acc.spent(1e-5).epsilon, epsilonFromRdp(mixed, 1e-5).epsilon, 1e-12, 'two groups');
  const next = acc.spent(1e-5, { samplingRate: 0.5, noiseMultiplier: 2, steps: 1 }).epsilon;
  assert.ok(next > acc.spent(1e-5).epsilon, 'one more step costs');
  assert.is(acc.steps, 110, 'pricing a step does not compose it');
  close(epsilonOfOneStep(1, 6, 1e-5), epsilonFromRdp(rdpOfSteps(1, 6, 1), 1e-5).epsilon, 1e-15, 'one step');
  assert.is(new PrivacyAccountant().spent(1e-5).epsilon, 0, 'nothing composed: ε 0');
  assert.throws(() => acc.compose(1.5, 1), /sampling rate must be in \[0, 1\]/);
  assert.throws(() => acc.compose(1, 0), /noise multiplier must be a positive number/);
  assert.throws(() => epsilonFromRdp(acc.rdp(), 0), /delta must be in \(0, 1\)/);
});

test.run();
