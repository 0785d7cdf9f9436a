import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, aggregate, generateFederation } from '../../../common/crypto/index.js';
import { ckksStrategy } from '../../../coordinator/strategy/aggregation.js';

// MQTT hands payloads over as Buffers that are views into a shared pool at any offset, and a
// Buffer's slice() is a view too. The coordinator once refused every FedAvg update so delivered
// ("byte length of Uint32Array should be a multiple of 4"): the codec copied with slice().
test('updates and aggregates inside a pooled Buffer at odd offsets are checked, summed and decrypted', async () => {
  const fed = await generateFederation({ federationId: 'views' });
  const cipher = await AgentCipher.create(fed.agent);
  try {
    const n = 636;
    const updates = [1, 2, 3].map((k) => cipher.encryptUpdate(Float32Array.from({ length: n }, (_, i) => (i % 7) / 7 - k / 5), 10 * k));
    const pool = Buffer.alloc(updates.reduce((a, u) => a + u.length + 3, 0) + 1);
    let off = 1;
    const views = updates.map((u) => {
      pool.set(u, off);
      const v = pool.subarray(off, off + u.length);
      off += u.length + 3;
      return v;
    });
    assert.ok(views.some((v) => v.byteOffset % 4 !== 0), 'at least one view is unaligned');
    const strategy = ckksStrategy(fed.coordinator);
    views.forEach((v, k) => assert.is(strategy.checkBody(v, n, 10 * (k + 1)), undefined));
    const sum = aggregate(fed.coordinator, views, { paramCount: n });
    const expected = aggregate(fed.coordinator, updates, { paramCount: n });
    assert.equal(Array.from(sum), Array.from(expected), 'the same bytes as from aligned copies');
    const holder = Buffer.alloc(sum.length + 5);
    holder.set(sum, 5);
    const got = cipher.decryptAggregate(holder.subarray(5), { paramCount: n }).weights;
    const want = cipher.decryptAggregate(expected, { paramCount: n }).weights;
    for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-9, `weight ${i}`);
  } finally {
    cipher.dispose();
  }
});

test.run();
