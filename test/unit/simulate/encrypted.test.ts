import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { encryptedAggregator, roundSampleBound } from '../../../coordinator/simulate/encrypted.js';
import { fedAvg, type ClientUpdate } from '../../../coordinator/strategy/fedavg.js';

test('roundSampleBound: the default 2^20 up to it, then the next power of two; bad input refused', () => {
  assert.is(roundSampleBound(0), 2 ** 20);
  assert.is(roundSampleBound(288 * 50), 2 ** 20);
  assert.is(roundSampleBound(2 ** 20), 2 ** 20);
  assert.is(roundSampleBound(2 ** 20 + 1), 2 ** 21);
  assert.is(roundSampleBound(60 * 30_000), 2 ** 21);
  assert.throws(() => roundSampleBound(-1), /rows must be an integer ≥ 0, got -1/);
  assert.throws(() => roundSampleBound(1.5), /got 1\.5/);
});

// Three machines with 400,000 training windows each: Σ n_k = 1.2 M, over the default bound.
const updates: ClientUpdate[] = [-1, 0.5, 2].map((v, k) => ({ weights: Float32Array.from({ length: 6 }, (_, i) => v + i / 10 - k), samples: 400_000 }));

test('the default federation refuses a round over 2^20 samples; one sized by roundSampleBound averages it', async () => {
  const small = await encryptedAggregator();
  try {
    let error: unknown;
    try {
      small.aggregate(updates);
    } catch (e) {
      error = e;
    }
    assert.ok(isIcosflError(error) && error.code === 'CRYPTO_VALUE_OUT_OF_RANGE', String(error));
    assert.match(String(error), /over maxRoundSamples 1048576/);
  } finally {
    small.dispose();
  }
  const sized = await encryptedAggregator({ maxRoundSamples: roundSampleBound(3 * 500_000) });
  try {
    const got = sized.aggregate(updates);
    const want = fedAvg(updates);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-6, `weight ${i}: ${got[i]} against ${want[i]}`);
    assert.ok(sized.maxAbsError() < 1e-6);
  } finally {
    sized.dispose();
  }
});

test.run();
