import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { isIcosflError } from '../../../common/errors.js';
import { inspectRingFile, MetricRing, ringFileBytes } from '../../../native/ring.js';
import { mountSmallFs } from '../../helpers/small-fs.js';
import { tempDir } from '../../helpers/paths.js';

// The ring on a real full filesystem (a 4 MiB tmpfs): its blocks are reserved when it is made or
// opened, so pushes never fault (SIGBUS) however full the disk gets; a capacity that does not fit
// is refused with the path, the bytes needed and the bytes free.
const fs = mountSmallFs(4 * 1024 * 1024);
const { dir: scratch, cleanup } = tempDir('icosfl-ring-full-');
test.after(() => {
  fs.unmount();
  cleanup();
});
test.before.each(() => fs.release());

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

test('a capacity whose file does not fit is refused: RING_NO_SPACE names path, needed and free; nothing is left behind', () => {
  const path = join(fs.dir, 'too-big.ring');
  const free = fs.freeBytes();
  const capacity = 2 ** 17; // 131072 × (16 + 4·4) B = 4 MiB + a header: more than the whole filesystem
  try {
    MetricRing.open({ path, capacity, channels: 4 });
    assert.unreachable('opened');
  } catch (err) {
    assert.ok(isIcosflError(err, 'RING_NO_SPACE'), String(err));
    assert.match(err.message, path);
    assert.match(err.message, String(ringFileBytes(capacity, 4)));
    assert.match(err.message, /bytes free on its filesystem/);
    assert.is(err.details?.path, path);
    assert.is(err.details?.neededBytes, ringFileBytes(capacity, 4));
    assert.ok(Math.abs(Number(err.details?.freeBytes) - free) <= 64 * 1024, `free ${String(err.details?.freeBytes)} vs statfs ${free}`);
  }
  assert.not.ok(existsSync(path), 'no empty or partial file is left');
});

test('a ring that fits is fully allocated at creation, and keeps taking samples on a full filesystem', () => {
  const path = join(fs.dir, 'fits.ring');
  const capacity = 4096;
  const ring = MetricRing.open({ path, capacity, channels: 8, schemaTag: 'a,b,c,d,e,f,g,h' });
  const st = statSync(path);
  assert.ok(st.blocks * 512 >= ringFileBytes(capacity, 8), `allocated ${st.blocks * 512} of ${ringFileBytes(capacity, 8)}`);
  fs.fill();
  assert.ok(fs.freeBytes() < 64 * 1024, `the filesystem is full (${fs.freeBytes()} B free)`);
  // Three laps: every page of the mapping is written on a full disk (a hole here would be SIGBUS).
  const row = new Float64Array(8);
  for (let i = 0; i < 3 * capacity; i++) {
    row.fill(i);
    ring.push(1000 + i, row);
  }
  assert.is(ring.size, capacity);
  assert.equal(Array.from(ring.latest(1).values), Array(8).fill(3 * capacity - 1));
  ring.close();
  const again = MetricRing.open({ path, capacity, channels: 8, schemaTag: 'a,b,c,d,e,f,g,h' });
  assert.is(again.size, capacity, 'reopened on the full disk with every sample');
  again.close();
});

test('an existing sparse ring is reserved on open, or refused while the disk cannot hold it (file untouched)', () => {
  // A ring written before reservation existed: a valid header and holes where the samples go.
  const capacity = 8192;
  const bytes = ringFileBytes(capacity, 4);
  const source = join(scratch, 'template.ring');
  MetricRing.open({ path: source, capacity, channels: 4, schemaTag: 'w,x,y,z' }).close();
  const path = join(fs.dir, 'sparse.ring');
  writeFileSync(path, readFileSync(source).subarray(0, 4096));
  truncateSync(path, bytes);
  const h = inspectRingFile(path);
  assert.ok(h.valid && h.allocatedBytes < bytes / 4, `sparse: ${h.allocatedBytes} of ${bytes} allocated`);
  const before = readFileSync(path);

  fs.fill();
  try {
    MetricRing.open({ path, capacity, channels: 4, schemaTag: 'w,x,y,z' });
    assert.unreachable('opened a ring whose holes cannot be filled');
  } catch (err) {
    assert.ok(isIcosflError(err, 'RING_NO_SPACE'), String(err));
    assert.match(err.message, path);
    assert.match(err.message, /bytes still to allocate/);
  }
  assert.ok(readFileSync(path).equals(before), 'left exactly as it was');

  fs.release();
  const { logger, lines } = captureLogger();
  const ring = MetricRing.open({ path, capacity, channels: 4, schemaTag: 'w,x,y,z', logger });
  assert.ok(inspectRingFile(path).allocatedBytes >= bytes, 'every block allocated now');
  assert.ok(lines.some((l) => l.msg === 'ring file had unallocated blocks; reserved them' && Number(l.reservedBytes) > 0));
  fs.fill();
  for (let i = 0; i < capacity + 10; i++) ring.push(i, [i, i, i, i]);
  assert.is(ring.size, capacity);
  ring.close();
});

test('a corrupt ring is kept once under <path>.corrupt: a second one replaces the first', () => {
  const path = join(fs.dir, 'bad.ring');
  for (const garbage of ['first garbage', 'second garbage']) {
    writeFileSync(path, garbage);
    const { logger } = captureLogger();
    MetricRing.open({ path, capacity: 8, channels: 1, logger }).close();
  }
  assert.equal(readdirSync(fs.dir).filter((f) => f.startsWith('bad.ring')).sort(), ['bad.ring', 'bad.ring.corrupt']);
  assert.is(readFileSync(`${path}.corrupt`, 'utf8'), 'second garbage');
});

test('inspectRingFile reads a header without locking it, and says why a file is not a ring', () => {
  const path = join(scratch, 'held.ring');
  const ring = MetricRing.open({ path, capacity: 16, channels: 2, schemaTag: 'p,q' });
  ring.push(1, [1, 2]);
  ring.push(2, [3, 4]);
  const h = inspectRingFile(path);
  assert.equal([h.valid, h.capacity, h.channels, h.schemaTag, h.writeSequence, h.version], [true, 16, 2, 'p,q', 2, 1]);
  ring.close();
  const junk = join(scratch, 'junk.ring');
  writeFileSync(junk, Buffer.alloc(5000, 1));
  assert.equal([inspectRingFile(junk).valid, inspectRingFile(junk).reason], [false, 'bad magic']);
  try {
    inspectRingFile(join(scratch, 'absent.ring'));
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'RING_IO'));
    assert.match(err.message, 'absent.ring');
    assert.is(err.details?.errno, 'ENOENT');
  }
});

test.run();
