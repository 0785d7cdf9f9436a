import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { MetricRing } from '../../../native/ring.js';
import { tempDir } from '../../helpers/paths.js';
import { ReferenceRing, type RefSample } from './reference-ring.js';
import { seededRandom } from '../../../common/seeded-random.js';

// Random operation sequences (fixed seed, so a failure replays) against the TypeScript model:
// wraparound, batched and single pushes, missing values, stats, windows, latest, range, and
// closing and reopening the file in between (the mapping must carry everything over).
const SEED = 0x1c05f1;
const RINGS = 24;
const OPS_PER_RING = 160;

const mulberry32 = seededRandom; // mulberry32 (common/seeded-random.ts): a failure replays from its seed

const { dir, cleanup } = tempDir('icosfl-ring-prop-');
test.after(cleanup);

function sameSamples(actual: { timestamps: Float64Array; values: Float32Array }, expected: RefSample[], what: string): void {
  assert.equal(Array.from(actual.timestamps), expected.map((s) => s.ts), `${what}: timestamps`);
  assert.equal(Array.from(actual.values), expected.flatMap((s) => s.values), `${what}: values`);
}

function close(a: number, b: number, what: string): void {
  if (Number.isNaN(b)) return assert.ok(Number.isNaN(a), `${what}: expected NaN, got ${a}`);
  const tol = 1e-9 * Math.max(1, Math.abs(b)) + 1e-6;
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
}

test('random operation sequences agree with the reference ring', () => {
  const rnd = mulberry32(SEED);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  // Levels as real metrics have them (percent, bytes/s around 1e9) plus missing and unstorable values.
  const value = (c: number): number => {
    const r = rnd();
    if (r < 0.03) return NaN;
    if (r < 0.04) return rnd() < 0.5 ? Infinity : -Infinity;
    if (r < 0.045) return 1e39; // beyond float32: stored as missing
    return c % 2 === 0 ? rnd() * 100 : 1e9 + rnd() * 1e4;
  };
  let checks = 0;
  for (let r = 0; r < RINGS; r++) {
    const capacity = 2 ** int(2, 7);
    const channels = int(1, 5);
    const path = join(dir, `ring-${r}.ring`);
    let ring = MetricRing.open({ path, capacity, channels, schemaTag: `r${r}` });
    const ref = new ReferenceRing(capacity, channels);
    let ts = 1_700_000_000_000;
    for (let op = 0; op < OPS_PER_RING; op++) {
      const what = `ring ${r} (capacity ${capacity}, channels ${channels}) op ${op}`;
      const kind = rnd();
      if (kind < 0.45) {
        const row = Array.from({ length: channels }, (_, c) => value(c));
        ts += int(0, 2000) - 200; // clock steps back now and then: range() must not assume order
        const input = rnd() < 0.5 ? row : Float64Array.from(row);
        ring.push(ts, input);
        ref.push(ts, row);
      } else if (kind < 0.55) {
        const n = int(0, capacity * 2 + 3);
        const tss = new Float64Array(n);
        const vals = new Float32Array(n * channels);
        for (let i = 0; i < n; i++) {
          tss[i] = ts += 1000;
          const row = Array.from({ length: channels }, (_, c) => value(c));
          vals.set(row.map(Math.fround), i * channels);
          ref.push(tss[i]!, row);
        }
        ring.pushBatch(tss, vals);
      } else if (kind < 0.65) {
        const n = int(0, capacity + 2);
        sameSamples(ring.latest(n), ref.latest(n), `${what} latest(${n})`);
      } else if (kind < 0.72) {
        const w = ref.window();
        const a = w.length ? w[int(0, w.length - 1)]!.ts : ts;
        const b = a + int(0, 20_000);
        sameSamples(ring.range(a, b), ref.range(a, b), `${what} range`);
        sameSamples(ring.range(-Infinity, Infinity), ref.window(), `${what} range(-∞, ∞)`);
      } else if (kind < 0.82) {
        const s = ring.stats();
        const e = ref.stats();
        for (let c = 0; c < channels; c++) {
          assert.is(s.count[c], e.count[c], `${what} count[${c}]`);
          close(s.mean[c]!, e.mean[c]!, `${what} mean[${c}]`);
          close(s.std[c]!, e.std[c]!, `${what} std[${c}]`);
          close(s.min[c]!, e.min[c]!, `${what} min[${c}]`);
          close(s.max[c]!, e.max[c]!, `${what} max[${c}]`);
        }
      } else if (kind < 0.95) {
        const lookback = int(1, Math.max(1, Math.floor(capacity / 2)));
        const horizon = int(1, Math.min(3, capacity - lookback));
        const stride = int(1, 4);
        const got = ring.windows(lookback, horizon, stride);
        const want = ref.windows(lookback, horizon, stride);
        assert.is(got.n, want.n, `${what} windows n`);
        assert.is(got.skipped, want.skipped, `${what} windows skipped`);
        assert.equal(Array.from(got.x), want.x, `${what} windows x`);
        assert.equal(Array.from(got.y), want.y, `${what} windows y`);
        assert.is(got.x.length, got.n * lookback * channels);
        assert.is(got.y.length, got.n * horizon * channels);
      } else {
        ring.close();
        ring = MetricRing.open({ path, capacity, channels, schemaTag: `r${r}` });
      }
      assert.is(ring.size, ref.size, `${what} size`);
      checks++;
    }
    ring.close();
  }
  assert.is(checks, RINGS * OPS_PER_RING);
});

test('capacity is rounded up to a power of two and reported', () => {
  const ring = MetricRing.open({ path: join(dir, 'round.ring'), capacity: 1000, channels: 2 });
  assert.is(ring.capacity, 1024);
  assert.is(ring.channels, 2);
  for (let i = 0; i < 1030; i++) ring.push(i, [i, -i]);
  assert.is(ring.size, 1024);
  assert.equal(Array.from(ring.latest(1).values), [1029, -1029]);
  ring.close();
});

test('window arrays stay valid after close and belong to the caller', () => {
  const ring = MetricRing.open({ path: join(dir, 'own.ring'), capacity: 8, channels: 1 });
  for (let i = 0; i < 8; i++) ring.push(i, [i]);
  const w = ring.windows(2, 1);
  const latest = ring.latest(3);
  ring.close();
  assert.is(w.n, 6);
  assert.equal(Array.from(w.x.subarray(0, 4)), [0, 1, 1, 2]);
  assert.equal(Array.from(w.y), [2, 3, 4, 5, 6, 7]);
  w.x[0] = 42; // writable, not a view of the (now unmapped) ring
  assert.is(w.x[0], 42);
  assert.equal(Array.from(latest.values), [5, 6, 7]);
});

test.run();
