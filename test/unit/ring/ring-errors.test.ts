import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { IcosflError } from '../../../common/errors.js';
import { loadAddon, type NativeRingHandle } from '../../../native/load-addon.js';
import { MetricRing, type RingOptions } from '../../../native/ring.js';
import { DIST, tempDir } from '../../helpers/paths.js';

// Every error MetricRing throws, triggered through the public API, with the name of what was wrong.
const { dir, cleanup } = tempDir('icosfl-ring-err-');
test.after(cleanup);

function throwsWith(fn: () => unknown, type: new (...a: never[]) => Error, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, type, `expected ${type.name}, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected ${type.name} matching ${pattern}`);
}

function throwsCode(fn: () => unknown, code: string, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, IcosflError, `expected IcosflError, got ${String(err)}`);
    assert.is((err as IcosflError).code, code);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

const base = (name: string): RingOptions => ({ path: join(dir, name), capacity: 16, channels: 2, schemaTag: 'a,b' });

test('open: bad options name the option', () => {
  throwsWith(() => MetricRing.open(null as unknown as RingOptions), TypeError, /options must be an object/);
  throwsWith(() => MetricRing.open({ ...base('x'), path: '' }), TypeError, /path must be a non-empty string/);
  throwsWith(() => MetricRing.open({ ...base('x'), path: 7 as unknown as string }), TypeError, /path/);
  throwsWith(() => MetricRing.open({ ...base('x'), capacity: 0 }), RangeError, /capacity must be an integer in \[1, 67108864\], got 0/);
  throwsWith(() => MetricRing.open({ ...base('x'), capacity: 2.5 }), RangeError, /capacity/);
  throwsWith(() => MetricRing.open({ ...base('x'), capacity: 2 ** 27 }), RangeError, /capacity/);
  throwsWith(() => MetricRing.open({ ...base('x'), channels: 0 }), RangeError, /channels must be an integer in \[1, 4096\]/);
  throwsWith(() => MetricRing.open({ ...base('x'), channels: '2' as unknown as number }), RangeError, /channels/);
  throwsWith(() => MetricRing.open({ ...base('x'), schemaTag: 5 as unknown as string }), TypeError, /schemaTag must be a string/);
  throwsWith(() => MetricRing.open({ ...base('x'), schemaTag: 'é'.repeat(128) }), RangeError, /schemaTag must be at most 255 UTF-8 bytes/);
});

test('open: layout mismatch names both layouts and leaves the file alone', () => {
  const ring = MetricRing.open(base('layout.ring'));
  ring.push(1, [1, 2]);
  ring.close();
  throwsCode(() => MetricRing.open({ ...base('layout.ring'), capacity: 32 }), 'RING_LAYOUT_MISMATCH', /capacity 16.*asked for capacity 32/);
  throwsCode(() => MetricRing.open({ ...base('layout.ring'), channels: 3 }), 'RING_LAYOUT_MISMATCH', /channels 2.*asked for .*channels 3/);
  throwsCode(() => MetricRing.open({ ...base('layout.ring'), schemaTag: 'a,c' }), 'RING_LAYOUT_MISMATCH', /schemaTag "a,b".*schemaTag "a,c"/);
  const again = MetricRing.open(base('layout.ring'));
  assert.is(again.size, 1);
  again.close();
});

test('open: a second handle on the same file is refused', () => {
  const ring = MetricRing.open(base('lock.ring'));
  throwsCode(() => MetricRing.open(base('lock.ring')), 'RING_LOCKED', /locked/);
  ring.close();
  MetricRing.open(base('lock.ring')).close(); // released on close
});

test('open: an unreachable path is RING_IO', () => {
  throwsCode(() => MetricRing.open(base('no-such-dir/r.ring')), 'RING_IO', /cannot open ring file .*no-such-dir/);
});

test('push and pushBatch: bad arguments', () => {
  const ring = MetricRing.open(base('push.ring'));
  throwsWith(() => ring.push(NaN, [1, 2]), TypeError, /timestampMs must be a finite number, got NaN/);
  throwsWith(() => ring.push('1' as unknown as number, [1, 2]), TypeError, /timestampMs/);
  throwsWith(() => ring.push(1, null as unknown as number[]), TypeError, /values must be an array-like of numbers/);
  throwsWith(() => ring.push(1, [1]), RangeError, /values must hold 2 numbers \(one per channel\), got 1/);
  throwsWith(() => ring.push(1, [1, '2' as unknown as number]), TypeError, /values\[1\] must be a number, got string/);
  throwsWith(() => ring.pushBatch([1] as unknown as Float64Array, new Float32Array(2)), TypeError, /timestampsMs must be a Float64Array/);
  throwsWith(() => ring.pushBatch(new Float64Array(1), [1, 2] as unknown as Float32Array), TypeError, /values must be a Float32Array/);
  throwsWith(() => ring.pushBatch(new Float64Array(2), new Float32Array(3)), RangeError, /values must hold timestampsMs.length × channels = 4 numbers, got 3/);
  throwsWith(() => ring.pushBatch(Float64Array.of(1, Infinity), new Float32Array(4)), RangeError, /timestampsMs\[1\] must be finite/);
  assert.is(ring.size, 0, 'nothing stored by a rejected call');
  ring.close();
});

test('reads: bad arguments', () => {
  const ring = MetricRing.open(base('read.ring'));
  throwsWith(() => ring.latest(-1), RangeError, /n must be a non-negative integer, got -1/);
  throwsWith(() => ring.latest(1.5), RangeError, /n must be/);
  throwsWith(() => ring.range(NaN, 1), TypeError, /fromMs must be a number/);
  throwsWith(() => ring.range(1, NaN), TypeError, /toMs must be a number/);
  throwsWith(() => ring.range(5, 1), RangeError, /fromMs \(5\) must not be after toMs \(1\)/);
  throwsWith(() => ring.windows(0, 1), RangeError, /lookback must be a positive integer, got 0/);
  throwsWith(() => ring.windows(2, 0), RangeError, /horizon must be a positive integer, got 0/);
  throwsWith(() => ring.windows(2, 1, 0), RangeError, /stride must be a positive integer, got 0/);
  throwsWith(() => ring.windows(15, 2), RangeError, /lookback \+ horizon \(17\) exceeds the ring's capacity \(16\)/);
  ring.close();
});

test('every method of a closed ring says it is closed', () => {
  const ring = MetricRing.open(base('closed.ring'));
  ring.close();
  ring.close(); // idempotent
  assert.ok(ring.isClosed);
  const calls: Array<[string, () => unknown]> = [
    ['push', () => ring.push(1, [1, 2])],
    ['pushBatch', () => ring.pushBatch(new Float64Array(0), new Float32Array(0))],
    ['size', () => ring.size],
    ['latest', () => ring.latest(1)],
    ['range', () => ring.range(0, 1)],
    ['stats', () => ring.stats()],
    ['windows', () => ring.windows(1, 1)],
  ];
  for (const [name, call] of calls) throwsWith(call, TypeError, new RegExp(`MetricRing\\.${name}: the ring .* is closed`));
});

test('the addon re-checks argument types itself (one-line macros that throw)', () => {
  // Reached only by calling the native handle directly: the wrapper validates first.
  const { NativeRing } = loadAddon();
  const Ctor = NativeRing as unknown as new (...args: unknown[]) => NativeRingHandle;
  throwsWith(() => new Ctor(1, 16, 2, ''), TypeError, /^path must be a string$/);
  throwsWith(() => new Ctor(join(dir, 'macro.ring'), '16', 2, ''), TypeError, /^capacity must be a number$/);
  throwsWith(() => new Ctor(join(dir, 'macro.ring'), 16, 2, null), TypeError, /^schemaTag must be a string$/);
  throwsWith(() => new Ctor(join(dir, 'macro.ring'), 12, 2, ''), RangeError, /capacity must be a power of two/);
  const handle = new NativeRing(join(dir, 'macro.ring'), 16, 2, '');
  const raw = handle as unknown as Record<string, (...args: unknown[]) => unknown>;
  throwsWith(() => handle.pushBatch(new Float32Array(1) as unknown as Float64Array, new Float32Array(2)), TypeError, /^timestampsMs must be a Float64Array$/);
  throwsWith(() => handle.pushBatch(new Float64Array(1), new Float32Array(3)), TypeError, /values must hold timestamps.length × channels/);
  throwsWith(() => raw.latest!.call(handle, 'all'), TypeError, /^n must be a number$/);
  throwsWith(() => raw.windows!.call(handle, 3, 1), TypeError, /^stride must be a number$/);
  throwsWith(() => handle.windows(0, 1, 1), RangeError, /lookback, horizon and stride must be positive/);
  handle.close();
  throwsWith(() => handle.size(), Error, /^the ring is closed$/);
  throwsWith(() => raw.pushStaged!(), Error, /^the ring is closed$/);
});

test('a missing addon is reported with the path and how to build it', () => {
  // A fresh process: the addon is loaded once per process.
  const script = `import('${join(DIST, 'native', 'ring.js')}').then((m) => m.MetricRing.open({ path: '${join(dir, 'na.ring')}', capacity: 4, channels: 1 })).catch((e) => { console.log(e.message); })`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ICOSFL_NATIVE_ADDON: join(dir, 'missing.node') }, encoding: 'utf8' });
  assert.match(out, /cannot load the native addon .*missing\.node: build it with `npm run build:native`/);
});

test.run();
