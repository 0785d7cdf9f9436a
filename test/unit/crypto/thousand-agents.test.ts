import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, DEFAULT_MAX_ROUND_SAMPLES, generateFederation } from '../../../common/crypto/index.js';
import { DEFAULT_FEDERATION_MODEL, modelParamCount } from '../../../common/protocol/federation-model.js';
import { weightCap } from '../../../coordinator/round/lifecycle.js';
import { ckksStrategy } from '../../../coordinator/strategy/aggregation.js';
import { fedAvg } from '../../../coordinator/strategy/fedavg.js';
import { seededRandom } from '../../../agent/trainer/rng.js';

// 1,000 agents at default settings, each with the default 5,000-window cap's ~4,000 training
// windows: uncapped, Σ n_k = 4 M would pass the default maxRoundSamples (2^20) and the sum could
// overflow; capped by the round's weightCap (coordinator/round/lifecycle.ts) it fits, and the
// decrypted average stays within the CKKS error bound of plaintext FedAvg of the capped weights.
test('1,000 agents of the default model: weights capped per round, the CKKS sum decrypts to FedAvg within 1e-4', async () => {
  const agents = 1000;
  const cap = weightCap(DEFAULT_MAX_ROUND_SAMPLES, agents, 2);
  assert.is(cap, Math.floor(DEFAULT_MAX_ROUND_SAMPLES / 1250));
  assert.ok(agents * Math.min(4000, cap) <= DEFAULT_MAX_ROUND_SAMPLES, 'Σ n_k fits the range');
  const fed = await generateFederation({ federationId: 'thousand' });
  const cipher = await AgentCipher.create(fed.agent);
  try {
    const n = modelParamCount(DEFAULT_FEDERATION_MODEL);
    const random = seededRandom(7);
    const strategy = ckksStrategy(fed.coordinator);
    const plain: { weights: Float32Array; samples: number }[] = [];
    const bodies: { body: Uint8Array; samples: number }[] = [];
    for (let k = 0; k < agents; k++) {
      const weights = Float32Array.from({ length: n }, () => (random() - 0.5) * 4);
      const samples = Math.min(3000 + (k % 2000), cap);
      const body = cipher.encryptUpdate(weights, samples);
      assert.is(strategy.checkBody(body, n, samples), undefined);
      plain.push({ weights, samples });
      bodies.push({ body, samples });
    }
    const sum = strategy.aggregate(bodies, n);
    assert.is(sum.clients, agents);
    assert.is(sum.totalSamples, agents * cap);
    const got = cipher.decryptAggregate(sum.bytes, { paramCount: n }).weights;
    const want = fedAvg(plain);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst < 1e-4, `max |CKKS − plaintext| = ${worst}`);
  } finally {
    cipher.dispose();
  }
});

test.run();
