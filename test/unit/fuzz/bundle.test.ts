import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateFederation, parseAgentBundle, parseCoordinatorBundle } from '../../../common/crypto/bundle.js';
import { deriveParams } from '../../../common/crypto/params.js';
import type { ErrorCode } from '../../../common/errors.js';
import { FUZZ_RUNS, FUZZ_SEED, Tally, fuzzOptions, refusedWith } from '../../helpers/fuzz.js';

// common/crypto/bundle.ts parseAgentBundle / parseCoordinatorBundle on hostile JSON (what
// loadAgentBundle / loadCoordinatorBundle hand them after JSON.parse): arbitrary JSON objects,
// and structure-aware edits of real bundles (any field of the bundle or its params replaced by a
// hostile value, removed, or a field added; the secret key cut, padded, re-encoded or swapped).
// Each is refused with a CRYPTO_* key code or yields parameters deriveParams accepts.
const REFUSED: ReadonlySet<ErrorCode> = new Set(['CRYPTO_KEY_INVALID', 'CRYPTO_SECRET_KEY_FORBIDDEN', 'CRYPTO_PARAMS_MISMATCH']);
type Json = Record<string, unknown>;
let agentJson: Json;
let coordinatorJson: Json;

test.before(async () => {
  const fed = await generateFederation({ federationId: 'fuzz-bundle' });
  agentJson = JSON.parse(JSON.stringify({ kind: 'icosfl-agent-bundle', params: fed.agent.params, secretKey: Buffer.from(fed.agent.secretKey).toString('base64') })) as Json;
  coordinatorJson = JSON.parse(JSON.stringify({ kind: 'icosfl-coordinator-bundle', params: fed.coordinator.params })) as Json;
  console.log(`  bundle fuzz: seed ${FUZZ_SEED}, ${FUZZ_RUNS} inputs per loader`);
});

const hostile = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(null, '', 0, -1, 2 ** 32, 2 ** 53, 1e308, 'icosfl-agent-bundle', 'icosfl-coordinator-bundle', 'AAAA', '====', 'A', '%%%', 'ckks', [], {}),
);
const field = fc.constantFrom('kind', 'params', 'secretKey', 'extra', '__proto__', 'constructor');
const paramField = fc.constantFrom('format', 'federationId', 'polyModulusDegree', 'coeffModulusBits', 'coeffModulus', 'maxAbsWeight', 'maxRoundSamples', 'keyId', 'extra', '__proto__');
type Edit = { at: 'top' | 'params'; key: string; value?: unknown } | { at: 'key'; op: 'cut' | 'pad' | 'url' | 'flip'; n: number };
const edits = fc.array(
  fc.oneof(
    fc.record({ at: fc.constant('top' as const), key: field, value: fc.option(hostile, { nil: undefined }) }),
    fc.record({ at: fc.constant('params' as const), key: paramField, value: fc.option(hostile, { nil: undefined }) }),
    fc.record({ at: fc.constant('key' as const), op: fc.constantFrom('cut' as const, 'pad' as const, 'url' as const, 'flip' as const), n: fc.nat() }),
  ),
  { minLength: 1, maxLength: 4 },
);

// A copy of each value, so no edit makes a cycle JSON.parse could never produce.
function set(o: Json, key: string, value: unknown): void {
  if (value === undefined) delete o[key];
  else Object.defineProperty(o, key, { value: structuredClone(value), enumerable: true, configurable: true, writable: true });
}

function edited(base: Json, list: readonly Edit[]): Json {
  const out: Json = { ...base, params: typeof base.params === 'object' && base.params !== null ? { ...(base.params as Json) } : base.params };
  for (const e of list) {
    if (e.at === 'top') set(out, e.key, e.value);
    else if (e.at === 'params' && typeof out.params === 'object' && out.params !== null && !Array.isArray(out.params)) set(out.params as Json, e.key, e.value);
    else if (e.at === 'key' && typeof out.secretKey === 'string') {
      const k = out.secretKey;
      const i = e.n % (k.length + 1);
      out.secretKey = e.op === 'cut' ? k.slice(0, i) : e.op === 'pad' ? k + 'A'.repeat(1 + (e.n % 8)) : e.op === 'url' ? k.replace(/\+/g, '-') : k.slice(0, i) + (k[i] === 'A' ? 'B' : 'A') + k.slice(i + 1);
    }
  }
  return out;
}

for (const side of ['agent', 'coordinator'] as const) {
  test(`parse${side === 'agent' ? 'Agent' : 'Coordinator'}Bundle (${FUZZ_RUNS}): refused with a key code, or parameters that derive`, () => {
    const tally = new Tally();
    const base = () => (side === 'agent' ? agentJson : coordinatorJson);
    const arb = fc.oneof(
      fc.dictionary(fc.constantFrom('kind', 'params', 'secretKey', 'x'), hostile, { maxKeys: 4 }),
      { arbitrary: fc.tuple(fc.boolean(), edits).map(([other, list]) => edited(other ? (side === 'agent' ? coordinatorJson : agentJson) : base(), list)), weight: 4 },
    );
    fc.assert(
      fc.property(arb, (value) => {
        const outcome = refusedWith(REFUSED, () => {
          const b = side === 'agent' ? parseAgentBundle(value, 'fuzz') : parseCoordinatorBundle(value, 'fuzz');
          deriveParams(b.params);
        });
        tally.add(outcome);
      }),
      fuzzOptions(),
    );
    console.log(`  ${side}:`, tally.toJSON());
    assert.ok(tally.get('accepted') > 0 && tally.get('CRYPTO_KEY_INVALID') > FUZZ_RUNS / 4);
    if (side === 'coordinator') assert.ok(tally.get('CRYPTO_SECRET_KEY_FORBIDDEN') > 0);
  });
}

test.run();
