import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, aggregate, generateFederation } from '../../../common/crypto/index.js';

// 10,000 encrypt → aggregate → decrypt cycles in one process. SEAL's WASM heap never shrinks, so a
// leaked SEAL object per cycle (a Serializable, a decoded vector) shows as steady RSS growth.
const CYCLES = 10_000;
const WARMUP = 1_000;
const MAX_GROWTH_MB = 24; // generous: a leak of even one 35 KB ciphertext per cycle would be ≈ 300 MB

test(`${CYCLES} cycles with a small model keep RSS flat after warm-up`, async () => {
  const { agent, coordinator } = await generateFederation({ federationId: 'leak' });
  const cipher = await AgentCipher.create(agent);
  try {
    const weights = new Float32Array(300).map((_, i) => Math.sin(i));
    // Sample counts of a real round (hundreds of windows): the average's error floor is
    // ≈ 5.5e-3 / Σn (common/crypto/params.ts), so Σn = 400 keeps it far inside the 1e-4 checked here.
    const other = cipher.encryptUpdate(weights, 100); // a second agent, so decrypt expands two seeds
    const mb = (): number => process.memoryUsage().rss / 2 ** 20;
    let rssWarm = 0;
    let rssMid = 0;
    const started = Date.now();
    for (let i = 1; i <= CYCLES; i++) {
      const bytes = aggregate(coordinator, [cipher.encryptUpdate(weights, 300), other]);
      const out = cipher.decryptAggregate(bytes, { paramCount: 300 });
      if (i % 1000 === 0 && Math.abs(out.weights[7]! - Math.sin(7)) > 1e-4) assert.unreachable(`cycle ${i}: wrong result ${out.weights[7]}`);
      if (i === WARMUP) rssWarm = mb();
      if (i === CYCLES / 2) rssMid = mb();
    }
    const rssEnd = mb();
    console.log(`  RSS after warm-up ${rssWarm.toFixed(1)} MB, at ${CYCLES / 2} ${rssMid.toFixed(1)} MB, at ${CYCLES} ${rssEnd.toFixed(1)} MB; ${((Date.now() - started) / CYCLES).toFixed(2)} ms/cycle`);
    assert.ok(rssEnd - rssWarm < MAX_GROWTH_MB, `RSS grew ${(rssEnd - rssWarm).toFixed(1)} MB after warm-up`);
  } finally {
    cipher.dispose();
  }
});

test.run();
