import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ErrorCode } from '../../../common/errors.js';
import { MetricRing } from '../../../native/ring.js';
import { FUZZ_RUNS, FUZZ_SEED, Tally, applyMutations, fuzzOptions, mutationArb, refusedWith } from '../../helpers/fuzz.js';

// Ring files as outside bytes: random and mutated files opened through the addon
// (native/ring.ts → native/src/ring.cpp), then read through every accessor. A crash of the addon
// would kill the process running it, so the fuzz loop runs in a child process (this file, with
// ICOSFL_RING_FUZZ_CHILD set) and the parent reports a signal or a non-zero exit as a failure.
// Each file opens, is refused with a RING_* code, or is moved aside as corrupt and replaced.
const CHILD = process.env.ICOSFL_RING_FUZZ_CHILD === '1';
const LAYOUT = { capacity: 16, channels: 2, schemaTag: 'cpu,mem' };
const REFUSED: ReadonlySet<ErrorCode> = new Set(['RING_LAYOUT_MISMATCH', 'RING_IO', 'RING_NO_SPACE']);
// Header fields (native/src/ring.hpp): version, header size, capacity, channels, dtype, tag
// length, and the write sequence at 512 (outside the checksum).
const FIELDS = [8, 12, 16, 20, 24, 28, 512, 516];
const CHECKSUM_AT = 296;

/**
 * ring.cpp's header checksum over bytes [0, n), in two 32-bit halves (prime 2^40 + 0x1b3), so
 * mutated headers can carry a valid one. Its offset basis is 1469598103934665603 (0x14650fb0739d0383),
 * as ring.cpp writes it, not FNV's usual 14695981039346656037.
 */
function fnv1a64(b: Uint8Array, n: number): [number, number] {
  let hi = 0x14650fb0;
  let lo = 0x739d0383;
  for (let i = 0; i < n; i++) {
    lo = (lo ^ b[i]!) >>> 0;
    const l = lo * 0x1b3;
    hi = (Math.imul(hi, 0x1b3) + (lo << 8) + Math.floor(l / 2 ** 32)) >>> 0;
    lo = l >>> 0;
  }
  return [hi, lo];
}

function childLoop(): void {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'icosfl-ring-fuzz-'));
  const path = join(dir, 'metrics.ring');
  const silent = pino({ level: 'silent' });
  const clear = () => {
    for (const f of readdirSync(dir)) unlinkSync(join(dir, f));
  };
  // Valid rings to mutate: empty, part filled, full, wrapped, with missing values.
  const bases: Uint8Array[] = [];
  for (const pushes of [0, 5, 16, 37]) {
    clear();
    const ring = MetricRing.open({ path, ...LAYOUT, logger: silent });
    for (let i = 0; i < pushes; i++) ring.push(1.7e12 + i * 1000, [i, i % 4 === 1 ? NaN : -i]);
    ring.close();
    bases.push(new Uint8Array(readFileSync(path)));
  }
  const tally = new Tally();
  const arb = fc.oneof(
    { arbitrary: fc.tuple(fc.nat({ max: bases.length - 1 }), mutationArb(FIELDS), fc.boolean()).map(([i, ms, fix]) => ({ bytes: applyMutations(bases[i]!, ms), fix })), weight: 4 },
    { arbitrary: fc.uint8Array({ maxLength: 5000 }).map((bytes) => ({ bytes, fix: false })), weight: 1 },
  );
  fc.assert(
    fc.property(arb, ({ bytes, fix }) => {
      clear();
      // Half the mutated headers get their checksum repaired, so the fields behind it are reached.
      if (fix && bytes.length >= CHECKSUM_AT + 8) {
        const [hi, lo] = fnv1a64(bytes, CHECKSUM_AT);
        const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        v.setUint32(CHECKSUM_AT, lo, true);
        v.setUint32(CHECKSUM_AT + 4, hi, true);
      }
      if (bytes.length > 0) writeFileSync(path, bytes);
      let movedAside = false;
      const outcome = refusedWith(REFUSED, () => {
        const ring = MetricRing.open({ path, ...LAYOUT, logger: silent });
        try {
          movedAside = readdirSync(dir).length > 1;
          const latest = ring.latest(LAYOUT.capacity);
          assert.is(latest.values.length, latest.timestamps.length * LAYOUT.channels);
          for (const t of latest.timestamps) assert.ok(Number.isFinite(t), 'only finite timestamps pass open');
          ring.stats();
          ring.windows(2, 1);
          ring.range(-Infinity, Infinity);
          ring.push(1.8e12, [1, 2]);
        } finally {
          ring.close();
        }
      });
      tally.add(outcome === 'accepted' ? (movedAside ? 'moved aside, fresh ring' : 'opened') : outcome);
    }),
    fuzzOptions(),
  );
  clear();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ ringFuzz: tally.toJSON() }));
}

if (CHILD) {
  childLoop();
} else {
  test(`${FUZZ_RUNS} random and mutated ring files through the addon, in a child process: no signal, only RING_* refusals`, async () => {
    const self = fileURLToPath(import.meta.url);
    const { code, signal, output } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [self], { env: { ...process.env, ICOSFL_RING_FUZZ_CHILD: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d));
      child.stderr.on('data', (d: Buffer) => (output += d));
      // Bounded: a hang in the addon is a failure too.
      const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, output });
      });
    });
    console.log(`  ring file fuzz: seed ${FUZZ_SEED}`);
    assert.is(signal, null, `the child died of ${signal}:\n${output.slice(-3000)}`);
    assert.is(code, 0, output.slice(-3000));
    const summary = /\{"ringFuzz":.*\}/.exec(output);
    assert.ok(summary, output.slice(-3000));
    const tally = (JSON.parse(summary![0]) as { ringFuzz: Record<string, number> }).ringFuzz;
    console.log('  ', tally);
    assert.is(Object.values(tally).reduce((a, b) => a + b, 0), FUZZ_RUNS);
    for (const k of ['opened', 'moved aside, fresh ring', 'RING_LAYOUT_MISMATCH']) assert.ok((tally[k] ?? 0) > 0, `some files ended ${k}`);
  });
  test.run();
}
