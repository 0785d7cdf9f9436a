import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { ckksWitness, roundSampleBound } from '../../../simulate/encrypted.js';
import { AgentCipher, aggregate, generateFederation } from '../../../common/crypto/index.js';
import { ckksCodec } from '../../../agent/federation/codec.js';
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

test('the default federation refuses a round over 2^20 samples; one sized by roundSampleBound averages it, and the witness sees the CKKS error', async () => {
  for (const [bound, fits] of [[undefined, false], [roundSampleBound(3 * 500_000), true]] as const) {
    const fed = await generateFederation({ federationId: 'sim-test', ...(bound ? { maxRoundSamples: bound } : {}) });
    const witness = ckksWitness();
    const codec = witness.wrap(ckksCodec(await AgentCipher.create(fed.agent)));
    try {
      const frames = updates.map((u) => codec.encode(u.weights, u.samples));
      let error: unknown;
      let sum: Uint8Array | undefined;
      try {
        sum = aggregate(fed.coordinator, frames);
      } catch (e) {
        error = e;
      }
      if (!fits) {
        assert.ok(isIcosflError(error) && error.code === 'CRYPTO_VALUE_OUT_OF_RANGE', String(error));
        assert.match(String(error), /over maxRoundSamples 1048576/);
        continue;
      }
      const got = codec.decode(sum!, 6, { clients: 3, totalSamples: 1_200_000 });
      const want = fedAvg(updates);
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-6, `weight ${i}: ${got[i]} against ${want[i]}`);
      assert.ok(witness.maxAbsError() > 0 && witness.maxAbsError() < 1e-6, `witness ${witness.maxAbsError()}`);
    } finally {
      codec.dispose();
    }
  }
});

test.run();
