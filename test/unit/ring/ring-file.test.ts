import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { MetricRing } from '../../../native/ring.js';
import { tempDir } from '../../helpers/paths.js';

// The ring file on disk: what survives a reopen, and what happens to files that fail a check.
// Offsets follow the layout in native/src/ring.hpp.
const HEADER = 4096;
const WRITE_SEQ = 512;
const CAP = 8;
const TAGS = HEADER + CAP * 8;

const { dir, cleanup } = tempDir('icosfl-ring-file-');
test.after(cleanup);

function captureLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

function filled(name: string, samples: number): string {
  const path = join(dir, name);
  const ring = MetricRing.open({ path, capacity: CAP, channels: 2, schemaTag: 'cpu,mem' });
  for (let i = 0; i < samples; i++) ring.push(1000 + i, [i, 10 * i]);
  ring.close();
  return path;
}

function patch(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}

const u64 = (v: bigint) => new Uint8Array(new BigUint64Array([v]).buffer);
const f64 = (v: number) => new Uint8Array(new Float64Array([v]).buffer);

test('samples, order and stats survive close and reopen', () => {
  const path = filled('persist.ring', 11);
  const ring = MetricRing.open({ path, capacity: CAP, channels: 2, schemaTag: 'cpu,mem' });
  assert.is(ring.size, CAP);
  assert.equal(Array.from(ring.latest(CAP).timestamps), [1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010]);
  assert.equal(Array.from(ring.stats().max), [10, 100]);
  ring.close();
});

// Each way a file can fail its checks, with the reason logged.
const corruptions: Array<[string, (path: string) => void, RegExp]> = [
  ['bad magic', (p) => patch(p, 0, new TextEncoder().encode('NOTARING')), /bad magic/],
  ['header bytes changed', (p) => patch(p, 40, new Uint8Array([0x58])), /header checksum mismatch/],
  ['truncated', (p) => truncateSync(p, HEADER + 100), /file is 4196 bytes, layout needs/],
  ['shorter than a header', (p) => writeFileSync(p, 'garbage'), /shorter than its header/],
  ['a record from elsewhere', (p) => patch(p, TAGS + 5 * 8, u64(77n)), /record tag at slot 5/],
  ['a write sequence beyond the records', (p) => patch(p, WRITE_SEQ, u64(40n)), /record tag at slot/],
  ['a non-finite timestamp', (p) => patch(p, HEADER + 3 * 8, f64(NaN)), /non-finite timestamp at slot 3/],
];

for (const [name, damage, reason] of corruptions) {
  test(`corrupt file (${name}) is moved aside, logged, and a fresh ring starts`, () => {
    const file = `corrupt-${name.replace(/\W+/g, '-')}.ring`;
    const path = filled(file, 11);
    damage(path);
    const damaged = readFileSync(path);
    const { logger, lines } = captureLogger();
    const ring = MetricRing.open({ path, capacity: CAP, channels: 2, schemaTag: 'cpu,mem', logger });
    assert.is(ring.size, 0, 'never mixed into the new ring');
    ring.push(5000, [1, 2]);
    ring.close();
    const aside = readdirSync(dir).filter((f) => f.startsWith(`${file}.corrupt`));
    assert.equal(aside, [`${file}.corrupt`], 'one file moved aside, under the one backup name');
    assert.ok(readFileSync(join(dir, aside[0]!)).equals(damaged), 'moved aside byte for byte');
    const warn = lines.find((l) => l.msg === 'corrupt ring file moved aside; started a fresh ring');
    assert.ok(warn, 'logged');
    assert.is(warn!.level, 40);
    assert.is(basename(String(warn!.movedAsideTo)), aside[0]);
    assert.match(String(warn!.reason), reason);
  });
}

test('the slot a killed push was overwriting drops only the oldest sample', () => {
  const path = filled('torn.ring', 11); // write sequence 11: slot 11 & 7 = 3 is next
  patch(path, TAGS + 3 * 8, u64(11n | (1n << 63n)));
  const { logger, lines } = captureLogger();
  const ring = MetricRing.open({ path, capacity: CAP, channels: 2, schemaTag: 'cpu,mem', logger });
  assert.is(ring.size, CAP - 1);
  assert.equal(Array.from(ring.latest(CAP).timestamps), [1004, 1005, 1006, 1007, 1008, 1009, 1010]);
  assert.equal(Array.from(ring.stats().count), [7, 7]);
  ring.push(2000, [0, 0]);
  assert.is(ring.size, CAP);
  ring.close();
  assert.not.ok(lines.some((l) => l.level === 40), 'not treated as corruption');
  assert.not.ok(readdirSync(dir).some((f) => f.startsWith('torn.ring.corrupt')));
});

test('a new file is created with the layout asked for', () => {
  const path = join(dir, 'new.ring');
  const { logger, lines } = captureLogger();
  const ring = MetricRing.open({ path, capacity: 5, channels: 3, logger });
  ring.close();
  assert.ok(existsSync(path));
  assert.is(readFileSync(path).length, HEADER + 8 * (16 + 4 * 3));
  assert.ok(lines.some((l) => l.msg === 'ring file created' && l.capacity === 8));
});

test.run();
