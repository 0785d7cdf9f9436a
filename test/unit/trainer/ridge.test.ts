import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { selectBackend } from '../../../agent/trainer/backends.js';
import { parseTrainerConfig } from '../../../agent/trainer/config.js';
import { Forecaster } from '../../../agent/trainer/forecaster.js';
import type { ModelSpec } from '../../../agent/trainer/model.js';
import {
  bestHead,
  headCount,
  headStatistics,
  packedLength,
  packStatistics,
  PERSONAL_LAMBDAS,
  personalHeads,
  RANDOM_BIAS_STD,
  randomiseHiddenBias,
  setHead,
  solveHead,
  unpackStatistics,
  type HeadStatistics,
} from '../../../agent/trainer/ridge.js';
import { seededRandom } from '../../../agent/trainer/rng.js';
import { concatWindows, type WindowSet } from '../../../agent/trainer/windows.js';
import { isIcosflError } from '../../../common/errors.js';
import { fedAvg } from '../../../coordinator/strategy/fedavg.js';

const spec: ModelSpec = { kind: 'mlp', lookback: 6, horizon: 2, channels: 2, hiddenUnits: 8, channelIndependent: true };
const forecaster = (s: ModelSpec = spec, seed = 1) => new Forecaster(s, { seed, learningRate: 0.01, scaler: { mean: new Array(s.channels).fill(0), std: new Array(s.channels).fill(1) } });

/** fn with a fresh forecaster (identity scaler), disposed afterwards whatever happens. */
function withForecaster<T>(fn: (f: Forecaster) => T, s: ModelSpec = spec): T {
  const f = forecaster(s);
  try {
    return fn(f);
  } finally {
    f.dispose();
  }
}

/** The statistics with their diagonal wrecked (as if broken on the way): not positive definite at small penalties. */
const notPositiveDefinite = (stats: HeadStatistics): HeadStatistics => ({ ...stats, gram: stats.gram.map((v, i) => (i % (stats.features + 1) === 0 ? -1e6 : v)) });

/** fn must throw TRAINING_FAILED with a message matching `message` (no solvable penalty). */
function assertTrainingFailed(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isIcosflError(e) && e.code === 'TRAINING_FAILED', String(e));
    assert.match((e as Error).message, message);
    return;
  }
  assert.unreachable('no solvable penalty');
}

/** n windows of seeded noise (inputs and targets); targets are replaced where a test needs them. */
function noiseWindows(n: number, seed: number): WindowSet {
  const random = seededRandom(seed);
  const { lookback: L, horizon: H, channels: C } = spec;
  return {
    x: Float32Array.from({ length: n * L * C }, () => random() * 2 - 1),
    y: Float32Array.from({ length: n * H * C }, () => random() * 2 - 1),
    n,
    lookback: L,
    horizon: H,
    channels: C,
    skipped: 0,
  };
}

test.before(async () => {
  await selectBackend(parseTrainerConfig({ backend: 'cpu' }), spec);
});

test('least squares recovers the output layers that generated the targets exactly', () => {
  withForecaster((f) => {
    randomiseHiddenBias(f, 7);
    // Feature 5, the last input, is always 0 (inputs are changes from the last value): no data
    // can identify its coefficients, and ridge leaves them at 0.
    const truth = Float64Array.from({ length: (6 + 8) * 2 }, (_, i) => (Math.floor(i / 2) === 5 ? 0 : Math.sin(i + 1)));
    setHead(f, truth);
    const ws = noiseWindows(60, 3);
    ws.y = f.predict(ws.x, ws.n); // no calibration: the network's own forecast
    // One set per independent channel, each over that channel's 60 rows (one per window).
    const stats = headStatistics(f, ws);
    assert.is(headCount(f), 2);
    assert.is(stats.length, 2);
    for (const [c, s] of stats.entries()) {
      assert.is(s.rows, 60);
      assert.is(s.features, 14);
      const beta = solveHead(s, 1e-10)!;
      for (let i = 0; i < truth.length; i++) assert.ok(Math.abs(beta[i]! - truth[i]!) < 1e-4, `channel ${c} β[${i}] ${beta[i]} vs ${truth[i]}`);
      // A fresh model given β forecasts what the generating one did.
      withForecaster((g) => {
        randomiseHiddenBias(g, 7);
        setHead(g, beta);
        const a = g.predict(ws.x, ws.n);
        for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - ws.y[i]!) < 1e-4);
      });
    }
  });
});

test('a joint model has one head over every window, with a penalty per step and channel', () => {
  withForecaster(
    (f) => {
      const stats = headStatistics(f, noiseWindows(25, 4));
      assert.is(headCount(f), 1);
      assert.is(stats.length, 1);
      assert.is(stats[0]!.rows, 25);
      assert.is(stats[0]!.features, 12 + 8); // 6 steps × 2 channels of inputs, 8 hidden
      assert.is(stats[0]!.outputs, 4); // 2 steps × 2 channels
      // Its personal penalties are picked per output column, each a (step, channel) of the errors.
      const validation = noiseWindows(20, 5);
      const prior = new Float64Array(20 * 4);
      const [head] = personalHeads(f, stats, [prior], validation, [1e-3, 1, 1000]);
      assert.is(head!.lambdas.length, 4);
      for (const [o, lambda] of head!.lambdas.entries()) {
        const errors = [1e-3, 1, 1000].map((l) => {
          setHead(f, solveHead(stats[0]!, l, prior)!);
          return f.outputErrors(validation)[o]!;
        });
        assert.is(lambda, [1e-3, 1, 1000][errors.indexOf(Math.min(...errors))]);
      }
    },
    { ...spec, channelIndependent: false },
  );
});

test('the rows-weighted FedAvg of packed means is the pooled statistics (one aggregation = centralised fit)', () => {
  withForecaster((f) => {
    randomiseHiddenBias(f, 7);
    const a = noiseWindows(30, 11);
    const b = noiseWindows(70, 12);
    const sa = headStatistics(f, a);
    const sb = headStatistics(f, b);
    const pooledMeans = fedAvg([
      { weights: packStatistics(sa), samples: a.n },
      { weights: packStatistics(sb), samples: b.n },
    ]);
    const pooled = unpackStatistics(pooledMeans, 14, 2, a.n + b.n, 2);
    const direct = headStatistics(f, concatWindows([a, b]));
    assert.is(pooled.length, 2);
    for (const [c, d] of direct.entries()) {
      const p = pooled[c]!;
      assert.is(p.rows, d.rows);
      for (let i = 0; i < d.gram.length; i++) assert.ok(Math.abs(p.gram[i]! - d.gram[i]!) <= 1e-4 * (1 + Math.abs(d.gram[i]!)), `channel ${c} gram[${i}]`);
      for (let i = 0; i < d.cross.length; i++) assert.ok(Math.abs(p.cross[i]! - d.cross[i]!) <= 1e-4 * (1 + Math.abs(d.cross[i]!)), `channel ${c} cross[${i}]`);
      const x = solveHead(p, 0.01)!;
      const y = solveHead(d, 0.01)!;
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) < 1e-5);
    }
    assert.is(packStatistics(sa).length, packedLength(14, 2, 2));
    assert.is(packedLength(14, 2, 2), 2 * packedLength(14, 2));
  });
});

test('a large penalty toward a prior returns the prior; penalties and sizes are checked', () => {
  withForecaster((f) => {
    const [stats, other] = headStatistics(f, noiseWindows(40, 5)) as [HeadStatistics, HeadStatistics];
    const prior = Float64Array.from({ length: 28 }, (_, i) => i / 10);
    const beta = solveHead(stats, 1e9, prior)!;
    for (let i = 0; i < prior.length; i++) assert.ok(Math.abs(beta[i]! - prior[i]!) < 1e-6);
    assert.throws(() => solveHead(stats, 0), /ridge penalty must be positive, got 0/);
    assert.throws(() => solveHead(stats, Number.NaN), /ridge penalty must be positive, got NaN/);
    // Not positive definite (statistics broken on the way): no solution rather than garbage.
    assert.is(solveHead(notPositiveDefinite(stats), 1), undefined);
    assert.throws(() => unpackStatistics(new Float32Array(5), 14, 2, 10), /packed head statistics have 5 values, 1 head\(s\) of 14 features → 2 outputs need 133/);
    assert.throws(() => unpackStatistics(new Float32Array(133), 14, 2, 10, 2), /packed head statistics have 133 values, 2 head\(s\) of 14 features → 2 outputs need 266/);
    assert.throws(() => packStatistics([{ ...stats, rows: 0 }]), /head statistics over no rows cannot be packed/);
    assert.throws(() => packStatistics([stats, { ...other, rows: 39 }]), /the heads to pack differ in rows or shape/);
    assert.throws(() => setHead(f, new Float64Array(3)), /ridge coefficients have 3 values, the model's head needs 28/);
  });
});

test('bestHead keeps the penalty with the least score, skips unsolvable ones, and fails by name when none scores', () => {
  withForecaster((f) => {
    randomiseHiddenBias(f, 7);
    const train = noiseWindows(50, 21);
    const validation = noiseWindows(20, 22);
    const stats = headStatistics(f, train)[0]!;
    const scores = new Map<number, number>();
    const lambdas = [1e-3, 0.1, 10];
    const picked = bestHead(f, stats, () => f.loss(validation), { lambdas });
    for (const lambda of lambdas) {
      setHead(f, solveHead(stats, lambda)!);
      scores.set(lambda, f.loss(validation));
    }
    const least = [...scores.entries()].reduce((a, b) => (b[1] < a[1] ? b : a));
    assert.is(picked.lambda, least[0]);
    // The chosen head is the one left in the model.
    setHead(f, picked.beta);
    assert.is(f.loss(validation), least[1]);
    assertTrainingFailed(() => bestHead(f, notPositiveDefinite(stats), () => 1, { lambdas: [1e-3] }), /no ridge penalty in \[0\.001\] gave a finite validation score/);
  });
});

test('personalHeads takes, per head and step, the penalty with the least validation error; sizes and failures are checked', () => {
  withForecaster((f) => {
    randomiseHiddenBias(f, 7);
    const train = noiseWindows(50, 31);
    const validation = noiseWindows(20, 32);
    const own = headStatistics(f, train);
    const priors = own.map((_, c) => Float64Array.from({ length: 28 }, (_, i) => Math.cos(i + c) / 10));
    const heads = personalHeads(f, own, priors, validation);
    assert.is(heads.length, 2);
    for (const [c, head] of heads.entries()) {
      assert.is(head.lambdas.length, 2); // one per step ahead
      for (const [h, lambda] of head.lambdas.entries()) {
        // Brute force: every penalty's error on (step h, channel c); the least is the one picked.
        const errors = PERSONAL_LAMBDAS.map((l) => {
          setHead(f, solveHead(own[c]!, l, priors[c])!);
          return f.outputErrors(validation)[h * 2 + c]!;
        });
        assert.is(lambda, PERSONAL_LAMBDAS[errors.indexOf(Math.min(...errors))]);
        // Column h of the head is that penalty's column h.
        const picked = solveHead(own[c]!, lambda, priors[c])!;
        for (let i = h; i < picked.length; i += 2) assert.is(head.beta[i], picked[i]);
      }
    }
    // A huge penalty alone gives the priors back.
    const anchored = personalHeads(f, own, priors, validation, [1e9]);
    for (const [c, head] of anchored.entries()) for (let i = 0; i < 28; i++) assert.ok(Math.abs(head.beta[i]! - priors[c]![i]!) < 1e-6);
    assert.throws(() => personalHeads(f, own.slice(0, 1), priors, validation), /personalHeads: the model has 2 head\(s\), got 1 statistics and 2 priors/);
    assertTrainingFailed(
      () => personalHeads(f, [notPositiveDefinite(own[0]!), own[1]!], priors, validation, [1e-3]),
      /no ridge penalty in \[0\.001\] gave a finite validation error for head 0/,
    );
  });
});

test('random hidden biases are seeded and have the documented spread; an LSTM has no ridge head', () => {
  const wide: ModelSpec = { ...spec, hiddenUnits: 4096 };
  const [a, b, c] = [forecaster(wide), forecaster(wide), forecaster(wide)];
  try {
    randomiseHiddenBias(a, 3);
    randomiseHiddenBias(b, 3);
    randomiseHiddenBias(c, 4);
    assert.equal(a.getWeights(), b.getWeights());
    assert.not.equal(a.getWeights(), c.getWeights());
    // The biases are the only weights it changes (they start at zero): 4,096 draws.
    const w = a.getWeights();
    const before = forecaster(wide);
    const initial = before.getWeights();
    before.dispose();
    const changed = Array.from(w).filter((v, i) => v !== initial[i]);
    assert.is(changed.length, 4096);
    const mean = changed.reduce((s, v) => s + v, 0) / changed.length;
    const std = Math.sqrt(changed.reduce((s, v) => s + (v - mean) ** 2, 0) / changed.length);
    assert.ok(Math.abs(mean) < 0.05 && Math.abs(std - RANDOM_BIAS_STD) < 0.05, `mean ${mean} std ${std}`);
  } finally {
    a.dispose();
    b.dispose();
    c.dispose();
  }
  withForecaster((lstm) => {
    assert.throws(() => headStatistics(lstm, noiseWindows(4, 1)), /a ridge head needs a dense model \(linear or mlp\), not 'lstm'/);
  }, { ...spec, kind: 'lstm' });
});

test.run();
