import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { isIcosflError } from '../../../common/errors.js';
import { storageHealth } from '../../../common/storage-health.js';
import { MIGRATING_SUFFIX, openStateRing, RING_FILE, UNMIGRATED_SUFFIX } from '../../../agent/sampler/open-ring.js';
import { inspectRingFile, MetricRing, ringFileBytes } from '../../../native/ring.js';
import { mountSmallFs } from '../../helpers/small-fs.js';
import { tempDir } from '../../helpers/paths.js';

// A ring of another layout in the state directory is migrated, not set aside: the newest samples
// that fit, the channels both metric lists name, NaN for new ones. What cannot be migrated is kept
// once (one backup, replaced by the next), with a warning saying where.
const { dir: root, cleanup } = tempDir('icosfl-ring-migrate-');
test.after(cleanup);

let n = 0;
const stateDir = () => {
  const d = join(root, `s${n++}`);
  mkdirSync(d);
  return d;
};

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

/** A state-directory ring of `metrics` holding `samples` rows: row i is [i + 0.1·c for each channel c], time 1000 + i. */
function seed(dir: string, metrics: string[], capacity: number, samples: number): void {
  const { logger } = captureLogger();
  const ring = openStateRing(dir, metrics, capacity, logger);
  for (let i = 0; i < samples; i++) ring.push(1000 + i, metrics.map((_, c) => i + 0.1 * c));
  ring.close();
}

test('a smaller capacity keeps the newest samples that fit, in order, with a warning', () => {
  const dir = stateDir();
  seed(dir, ['cpu', 'mem'], 64, 50);
  const { logger, lines } = captureLogger();
  const ring = openStateRing(dir, ['cpu', 'mem'], 16, logger);
  assert.is(ring.capacity, 16);
  assert.is(ring.size, 16);
  const { timestamps, values } = ring.latest(16);
  assert.equal(Array.from(timestamps), Array.from({ length: 16 }, (_, k) => 1034 + k));
  assert.ok(Math.abs(values[0]! - 34) < 1e-5 && Math.abs(values[1]! - 34.1) < 1e-5);
  ring.close();
  const warn = lines.find((l) => l.msg === 'ring migrated to the configured layout');
  assert.ok(warn && warn.level === 40, 'warned: samples were dropped');
  assert.equal([warn!.held, warn!.kept], [50, 16]);
  assert.equal(readdirSync(dir).sort(), [RING_FILE], 'no backup, no temp file, no .old');
});

test('a larger capacity keeps every sample and says so at info', () => {
  const dir = stateDir();
  seed(dir, ['cpu', 'mem'], 16, 20);
  const { logger, lines } = captureLogger();
  const ring = openStateRing(dir, ['cpu', 'mem'], 100, logger);
  assert.equal([ring.capacity, ring.size], [128, 16]);
  assert.equal(Array.from(ring.latest(1).timestamps), [1019]);
  ring.push(5000, [1, 2]);
  assert.is(ring.size, 17);
  ring.close();
  assert.is(lines.find((l) => l.msg === 'ring migrated to the configured layout')?.level, 30);
});

test('a changed metric list keeps the channels of the same name, NaN for new ones, drops the rest', () => {
  const dir = stateDir();
  seed(dir, ['cpu', 'mem', 'load1'], 32, 10);
  const { logger, lines } = captureLogger();
  const ring = openStateRing(dir, ['load1', 'net', 'cpu'], 32, logger);
  const { values } = ring.latest(10);
  for (let i = 0; i < 10; i++) {
    assert.ok(Math.abs(values[i * 3]! - (i + 0.2)) < 1e-5, `load1 of row ${i}`);
    assert.ok(Number.isNaN(values[i * 3 + 1]!), `net of row ${i} is missing`);
    assert.ok(Math.abs(values[i * 3 + 2]! - i) < 1e-5, `cpu of row ${i}`);
  }
  assert.equal(Array.from(ring.stats().count), [10, 0, 10]);
  ring.close();
  const warn = lines.find((l) => l.msg === 'ring migrated to the configured layout')!;
  assert.equal([warn.dropped, warn.added], [['mem'], ['net']]);
  assert.is(inspectRingFile(join(dir, RING_FILE)).schemaTag, 'load1,net,cpu');
});

test('no channel in common: the old ring is kept as the one backup (replaced by the next), with a warning', () => {
  const dir = stateDir();
  for (const metrics of [['a'], ['b'], ['c']]) {
    seed(dir, metrics, 8, 3);
  }
  const files = readdirSync(dir).sort();
  assert.equal(files, [RING_FILE, `${RING_FILE}${UNMIGRATED_SUFFIX}`], 'one backup, not a pile');
  assert.is(inspectRingFile(join(dir, `${RING_FILE}${UNMIGRATED_SUFFIX}`)).schemaTag, 'b', 'the newest one kept');
  const { logger, lines } = captureLogger();
  openStateRing(dir, ['d'], 8, logger).close();
  const warn = lines.find((l) => l.msg === 'ring could not be migrated to the configured layout; kept it as the one backup and started an empty ring');
  assert.ok(warn && warn.level === 40);
  assert.is(warn!.keptAs, join(dir, `${RING_FILE}${UNMIGRATED_SUFFIX}`));
  assert.match(String(warn!.reason), /no channel of capacity 8, 1 channels \(c\)/);
});

test('a ring of another format version is kept as the backup, not misread', () => {
  const dir = stateDir();
  seed(dir, ['cpu'], 8, 5);
  const path = join(dir, RING_FILE);
  // Format version 2 with a valid checksum: FNV-1a 64 of the 296 header bytes before it, with the
  // offset basis ring.cpp uses (1469598103934665603, one digit short of the published FNV basis).
  const buf = readFileSync(path);
  buf.writeUInt32LE(2, 8);
  let h = 1469598103934665603n;
  for (let i = 0; i < 296; i++) h = ((h ^ BigInt(buf[i]!)) * 0x100000001b3n) & 0xffffffffffffffffn;
  buf.writeBigUInt64LE(h, 296);
  writeFileSync(path, buf);
  assert.ok(inspectRingFile(path).valid);
  const { logger, lines } = captureLogger();
  const ring = openStateRing(dir, ['cpu'], 8, logger);
  assert.is(ring.size, 0);
  ring.close();
  assert.ok(readFileSync(`${path}${UNMIGRATED_SUFFIX}`).equals(buf), 'kept byte for byte');
  assert.match(String(lines.find((l) => l.level === 40)?.reason), /format version 2/);
});

test('a migration a crash interrupted leaves the old ring; its temp file is removed at the next open', () => {
  const dir = stateDir();
  seed(dir, ['cpu'], 8, 5);
  writeFileSync(join(dir, `${RING_FILE}${MIGRATING_SUFFIX}`), 'half a ring');
  const { logger } = captureLogger();
  const ring = openStateRing(dir, ['cpu'], 8, logger);
  assert.is(ring.size, 5);
  ring.close();
  assert.equal(readdirSync(dir), [RING_FILE]);
});

test("'refuse' (the sample command) leaves a ring of another layout byte for byte and says what to do", () => {
  const dir = stateDir();
  seed(dir, ['cpu', 'mem'], 16, 9);
  const path = join(dir, RING_FILE);
  const before = readFileSync(path);
  const { logger } = captureLogger();
  try {
    openStateRing(dir, ['cpu'], 16, logger, { onLayoutChange: 'refuse' });
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'RING_LAYOUT_MISMATCH'), String(err));
    assert.match(err.message, path);
    assert.match(err.message, /never migrates or replaces a ring/);
    assert.match(err.message, /--state-dir DIR/);
  }
  assert.ok(readFileSync(path).equals(before));
  assert.equal(readdirSync(dir), [RING_FILE]);
});

test('a ring held by another handle is never migrated under it: RING_LOCKED, file intact', () => {
  const dir = stateDir();
  seed(dir, ['cpu'], 16, 4);
  const path = join(dir, RING_FILE);
  const held = MetricRing.open({ path, capacity: 16, channels: 1, schemaTag: 'cpu' });
  try {
    openStateRing(dir, ['cpu'], 8, captureLogger().logger);
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'RING_LOCKED'), String(err));
  }
  assert.equal([held.size, inspectRingFile(path).capacity], [4, 16]);
  held.close();
  assert.equal(readdirSync(dir), [RING_FILE]);
});

test('a migration that does not fit beside the old ring is refused with the space it needs; the old ring is intact', () => {
  const fs = mountSmallFs(1024 * 1024);
  try {
    const dir = join(fs.dir, 'state');
    seed(dir, ['cpu', 'mem'], 4096, 5000); // 4096 × 24 B ≈ 100 KB
    const path = join(dir, RING_FILE);
    const before = readFileSync(path);
    fs.fill(64 * 1024);
    try {
      openStateRing(dir, ['cpu', 'mem'], 8192, captureLogger().logger); // needs ≈ 200 KB beside it
      assert.unreachable();
    } catch (err) {
      assert.ok(isIcosflError(err, 'RING_NO_SPACE'), String(err));
      assert.match(err.message, /migrating .*metrics\.ring to the configured layout needs a second ring file beside it/);
      assert.match(err.message, String(ringFileBytes(8192, 2)));
      assert.match(err.message, /lower sampler\.ring_capacity/);
    }
    assert.ok(storageHealth.report().failing.some((f) => f.kind === 'ring' && f.errno === 'ENOSPC'), 'recorded for status and metrics');
    assert.ok(readFileSync(path).equals(before));
    assert.equal(readdirSync(dir), [RING_FILE], 'the temp file is removed');
    fs.release();
    const ring = openStateRing(dir, ['cpu', 'mem'], 8192, captureLogger().logger);
    assert.equal([ring.capacity, ring.size], [8192, 4096]);
    ring.close();
  } finally {
    fs.unmount();
  }
});

test.run();
