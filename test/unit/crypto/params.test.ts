import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deriveParams, generateFederation, securityBits } from '../../../common/crypto/index.js';
import { loadSeal } from '../../../common/crypto/seal-loader.js';
import { isIcosflError } from '../../../common/errors.js';

test("securityBits reads the same HE-standard table SEAL enforces (CoeffModulus.MaxBitCount)", async () => {
  const seal = await loadSeal();
  for (const n of [2048, 4096, 8192, 16384]) {
    for (const [bits, level] of [[128, seal.SecurityLevel.tc128], [192, seal.SecurityLevel.tc192], [256, seal.SecurityLevel.tc256]] as const) {
      const max = seal.CoeffModulus.MaxBitCount(n, level);
      assert.ok(securityBits(n, max) >= bits, `N=${n} log q=${max} should give ≥ ${bits}`);
      if (bits === 128) assert.is(securityBits(n, max + 1), 0, `N=${n} log q=${max + 1} is below 128 bits`);
    }
  }
  assert.is(securityBits(4096, 47), 256);
});

test('the default federation: 47-bit q, two values per slot, scale 2^20, message bound ≤ q/3', async () => {
  const { coordinator } = await generateFederation();
  const d = deriveParams(coordinator.params);
  assert.is(d.n, 4096);
  assert.is(d.slots, 4096);
  assert.ok(d.q < 2 ** 47 && d.q > 2 ** 46 && d.q % 8192 === 1);
  assert.is(d.scale, 2 ** 20);
  // Two values per slot can double a coefficient (complex-slots.ts): 2·W·S·Δ must stay ≤ q/3.
  assert.ok(2 * coordinator.params.maxAbsWeight * coordinator.params.maxRoundSamples * d.scale <= d.q / 3);
  assert.ok((d.packedPolyBytes + 64) / d.slots < 6);
});

test('options that leave no room for a scale are refused at creation', async () => {
  try {
    await generateFederation({ maxAbsWeight: 2 ** 20, maxRoundSamples: 2 ** 32 - 1 });
    assert.unreachable('accepted');
  } catch (err) {
    assert.ok(isIcosflError(err, 'CRYPTO_KEY_INVALID'), String(err));
    assert.match((err as Error).message, /lower one of them/);
  }
  try {
    await generateFederation({ federationId: 'has spaces' });
    assert.unreachable('accepted');
  } catch (err) {
    assert.ok(isIcosflError(err, 'CRYPTO_KEY_INVALID'), String(err));
    assert.match((err as Error).message, /federationId/);
  }
});

test.run();
