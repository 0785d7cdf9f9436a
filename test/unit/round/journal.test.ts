import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import type { RoundEvent } from '../../../coordinator/round/events.js';
import { FileJournal, MemoryJournal, type RoundJournal } from '../../../coordinator/round/journal.js';
import { tempDir } from '../../helpers/paths.js';
import { Driver, FEDAVG_PARAMS, bodyOf, testSettings } from './driver.js';

// The coordinator's journal on disk: records as documented, reopened by a new instance, torn
// and corrupt tails cut off, snapshots and epochs, a corrupt snapshot set aside, the lock.

const tmp = tempDir('icosfl-journal-');
test.after(() => tmp.cleanup());
let dirs = 0;
const freshDir = () => {
  const dir = join(tmp.dir, `d${dirs++}`);
  mkdirSync(dir);
  return dir;
};

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

const silent = pino({ level: 'silent' });

function open(dir: string, logger: pino.Logger = silent): { j: FileJournal; snapshot: ReturnType<FileJournal['load']>['snapshot']; events: RoundEvent[] } {
  const j = new FileJournal(dir, logger);
  const { snapshot, events } = j.load();
  return { j, snapshot, events };
}

function updateEvent(agent: string, round: number, fill: number, now: number): RoundEvent {
  return {
    type: 'update',
    now,
    message: { type: 'update', federation: 't', agent, session: 1, round, phase: 'fedavg', samples: 3, windows: 4, baseLoss: 'Infinity', codec: 'plaintext', body: bodyOf(FEDAVG_PARAMS, fill) },
  };
}

const EVENTS: RoundEvent[] = [
  { type: 'start', now: 1 },
  { type: 'presence', now: 2, message: { type: 'presence', federation: 't', agent: 'a', state: 'online', at: 2 } },
  updateEvent('a', 1, 0.5, 3),
  { type: 'ack', now: 4, message: { type: 'ack', federation: 't', agent: 'a', session: 1, round: 1, phase: 'ridge', ok: true, ridgeLosses: [[null, 'Infinity', 0.5]] } },
  updateEvent('b', 1, -2, 5),
  { type: 'aggregated', now: 6, round: 1, clients: 2, totalSamples: 6, bytes: 116 },
  { type: 'published', now: 7, round: 1, chunks: 1, bytes: 300 },
];

/** The records of a journal file, read by the byte table in journal.ts. */
function records(path: string): { off: number; J: number; B: number; json: unknown }[] {
  const data = readFileSync(path);
  const out: { off: number; J: number; B: number; json: unknown }[] = [];
  let off = 0;
  while (off < data.length) {
    assert.is(data.subarray(off, off + 4).toString('latin1'), 'ICJR', `magic at ${off}`);
    const J = data.readUInt32LE(off + 4);
    const B = data.readUInt32LE(off + 8);
    assert.is(data.readUInt32LE(off + 12), crc32(data.subarray(off + 16, off + 16 + J + B)), `CRC-32 at ${off}`);
    out.push({ off, J, B, json: JSON.parse(data.subarray(off + 16, off + 16 + J).toString('utf8')) });
    off += 16 + J + B;
  }
  assert.is(off, data.length);
  return out;
}

test('grouped events (presences, acks) are in the file at once, as a killed process leaves it, and load back; sync() and close() sync them', () => {
  const dir = freshDir();
  const first = open(dir);
  first.j.append(EVENTS[0]!);
  first.j.append(EVENTS[1]!, true);
  first.j.append(EVENTS[3]!, true);
  // Before any fdatasync: the records were written (the kernel has them; only a power loss could drop them).
  assert.equal(records(join(dir, 'journal-0.log')).map((r) => r.json), [EVENTS[0], EVENTS[1], EVENTS[3]]);
  first.j.sync();
  first.j.append(EVENTS[2]!);
  first.j.append(EVENTS[1]!, true);
  first.j.close();
  const again = open(dir);
  assert.equal(again.events, [EVENTS[0], EVENTS[1], EVENTS[3], EVENTS[2], EVENTS[1]]);
  again.j.close();
});

test('events and update bodies survive a reopen by a new instance; the records are as documented', () => {
  const dir = freshDir();
  const first = open(dir);
  assert.is(first.snapshot, undefined);
  assert.equal(first.events, []);
  for (const e of EVENTS) first.j.append(e);
  assert.equal(first.j.updateBodies(1, ['b', 'a']), [bodyOf(FEDAVG_PARAMS, -2), bodyOf(FEDAVG_PARAMS, 0.5)]);
  first.j.close();

  const recs = records(join(dir, 'journal-0.log'));
  assert.is(recs.length, EVENTS.length);
  assert.equal(recs.map((r) => r.B), [0, 0, 4 * FEDAVG_PARAMS, 0, 4 * FEDAVG_PARAMS, 0, 0]);
  const { body: _b, ...header } = (EVENTS[2] as Extract<RoundEvent, { type: 'update' }>).message;
  assert.equal(recs[2]!.json, { type: 'update', now: 3, message: header }, 'the update record holds the event without its body');
  assert.equal(recs[0]!.json, EVENTS[0]);

  const again = open(dir);
  assert.equal(again.events, EVENTS);
  assert.equal(again.j.updateBodies(1, ['a', 'b']), [bodyOf(FEDAVG_PARAMS, 0.5), bodyOf(FEDAVG_PARAMS, -2)]);
  assert.throws(
    () => again.j.updateBodies(1, ['c']),
    (e: unknown) => isIcosflError(e, 'STATE_CORRUPT') && /no stored update of agent c for round 1/.test((e as Error).message),
  );
  assert.throws(() => again.j.updateBodies(2, ['a']), (e: unknown) => isIcosflError(e, 'STATE_CORRUPT'));
  again.j.close();
});

test('a torn tail is cut off, the earlier events kept, and appends continue after them', () => {
  const dir = freshDir();
  const w = open(dir);
  for (const e of EVENTS) w.j.append(e);
  w.j.close();
  const path = join(dir, 'journal-0.log');
  const recs = records(path);
  // Mid-record: inside the last update's body (record 4), and inside a header.
  truncateSync(path, recs[4]!.off + 16 + recs[4]!.J + 10);
  const log = capture();
  const r = open(dir, log.logger);
  assert.equal(r.events, EVENTS.slice(0, 4));
  assert.ok(log.lines.some((l) => l.msg === 'journal record unreadable; the journal is cut off there' && l.why === 'torn record' && l.offset === recs[4]!.off));
  assert.is(readFileSync(path).length, recs[4]!.off, 'the torn record is cut from the file');
  r.j.append(EVENTS[4]!);
  r.j.close();
  const r2 = open(dir);
  assert.equal(r2.events, EVENTS.slice(0, 5));
  assert.equal(r2.j.updateBodies(1, ['b']), [bodyOf(FEDAVG_PARAMS, -2)]);
  r2.j.close();
});

test('a torn header (fewer than 16 bytes) is cut off too', () => {
  const dir = freshDir();
  const w = open(dir);
  for (const e of EVENTS.slice(0, 3)) w.j.append(e);
  w.j.close();
  const path = join(dir, 'journal-0.log');
  const recs = records(path);
  truncateSync(path, recs[2]!.off + 7);
  const log = capture();
  const r = open(dir, log.logger);
  assert.equal(r.events, EVENTS.slice(0, 2));
  assert.ok(log.lines.some((l) => l.why === 'torn header'));
  r.j.close();
});

test('a flipped byte fails the CRC: the journal ends at that record', () => {
  for (const [what, where] of [
    ['in the JSON', (r: { off: number; J: number }) => r.off + 16 + 3],
    ['in the body', (r: { off: number; J: number }) => r.off + 16 + r.J + 40],
  ] as const) {
    const dir = freshDir();
    const w = open(dir);
    for (const e of EVENTS) w.j.append(e);
    w.j.close();
    const path = join(dir, 'journal-0.log');
    const recs = records(path);
    const data = readFileSync(path);
    const at = where(recs[2]!);
    data[at] = data[at]! ^ 0x04;
    writeFileSync(path, data);
    const log = capture();
    const r = open(dir, log.logger);
    assert.equal(r.events, EVENTS.slice(0, 2), what);
    assert.ok(log.lines.some((l) => l.why === 'checksum mismatch'), what);
    assert.is(readFileSync(path).length, recs[2]!.off, what);
    r.j.close();
  }
  // A bad magic ends it the same way.
  const dir = freshDir();
  const w = open(dir);
  for (const e of EVENTS.slice(0, 3)) w.j.append(e);
  w.j.close();
  const path = join(dir, 'journal-0.log');
  const recs = records(path);
  const data = readFileSync(path);
  data[recs[1]!.off] = 0;
  writeFileSync(path, data);
  const log = capture();
  const r = open(dir, log.logger);
  assert.equal(r.events, EVENTS.slice(0, 1));
  assert.ok(log.lines.some((l) => l.why === 'bad magic'));
  r.j.close();
});

test('checkpoint writes state.json and starts a new epoch; an old-epoch journal left behind is removed at load', () => {
  const dir = freshDir();
  const d = new Driver(testSettings());
  d.start();
  d.presence('a');
  d.presence('b');
  const w = open(dir);
  for (const e of EVENTS.slice(0, 3)) w.j.append(e);
  w.j.checkpoint(d.state);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith('journal-')), ['journal-1.log']);
  assert.is(readFileSync(join(dir, 'journal-1.log')).length, 0);
  assert.equal(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')), { epoch: 1, state: JSON.parse(JSON.stringify(d.state)) });
  assert.throws(() => w.j.updateBodies(1, ['a']), (e: unknown) => isIcosflError(e, 'STATE_CORRUPT'), 'bodies of the old epoch are gone');
  w.j.append(EVENTS[4]!);
  w.j.checkpoint(d.state);
  w.j.append(EVENTS[5]!);
  w.j.close();
  assert.equal(readdirSync(dir).filter((f) => f.startsWith('journal-')), ['journal-2.log']);
  // A crash between the snapshot's rename and the old journal's removal leaves one behind.
  writeFileSync(join(dir, 'journal-1.log'), readFileSync(join(dir, 'journal-2.log')));
  writeFileSync(join(dir, 'journal-0.log'), 'junk');
  const r = open(dir);
  assert.equal(r.snapshot, JSON.parse(JSON.stringify(d.state)));
  assert.equal(r.events, [EVENTS[5]]);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith('journal-')), ['journal-2.log']);
  r.j.close();
});

test('a corrupt state.json is moved aside and load gives no snapshot', () => {
  for (const [what, content] of [
    ['not JSON', '{"epoch": 3, "sta'],
    ['not a format-1 state', JSON.stringify({ epoch: 3, state: { format: 2 } })],
    ['no epoch', JSON.stringify({ state: { format: 1 } })],
  ] as const) {
    const dir = freshDir();
    writeFileSync(join(dir, 'state.json'), content);
    writeFileSync(join(dir, 'journal-3.log'), '');
    const log = capture();
    const before = Date.now();
    const r = open(dir, log.logger);
    assert.is(r.snapshot, undefined, what);
    assert.equal(r.events, [], what);
    const aside = readdirSync(dir).filter((f) => f.startsWith('state.json'));
    assert.is(aside.length, 1, what);
    assert.match(aside[0]!, /^state\.json\.corrupt-\d+$/, what);
    assert.ok(Number(aside[0]!.slice('state.json.corrupt-'.length)) >= before, what);
    assert.is(readFileSync(join(dir, aside[0]!), 'utf8'), content, `${what}: kept as it was`);
    assert.ok(log.lines.some((l) => l.msg === 'coordinator state is corrupt; starting a fresh one' && l.level === 50), what);
    assert.not.ok(existsSync(join(dir, 'journal-3.log')), `${what}: the journal of that snapshot is dropped with it`);
    // The fresh start works: append, checkpoint, reopen.
    r.j.append(EVENTS[0]!);
    r.j.checkpoint({ ...new Driver().state });
    r.j.close();
    const again = open(dir);
    assert.is(again.snapshot?.format, 1, what);
    again.j.close();
  }
});

test('the lock: one FileJournal per directory; a live holder refuses, a dead one is taken over', async () => {
  const dir = freshDir();
  const first = open(dir);
  assert.is(readFileSync(join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
  // Another journal of this very process.
  assert.throws(
    () => new FileJournal(dir, silent).load(),
    (e: unknown) => isIcosflError(e, 'COORDINATOR_BUSY') && /in use/.test((e as Error).message),
  );
  first.j.append(EVENTS[0]!);
  first.j.close();
  assert.not.ok(existsSync(join(dir, 'lock')), 'close releases it');
  const second = open(dir);
  assert.equal(second.events, [EVENTS[0]]);
  second.j.close();

  // Held by another live process.
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    writeFileSync(join(dir, 'lock'), `${sleeper.pid}\n`);
    let caught: unknown;
    try {
      new FileJournal(dir, silent).load();
    } catch (err) {
      caught = err;
    }
    assert.ok(isIcosflError(caught, 'COORDINATOR_BUSY'), String(caught));
    assert.is((caught as { details?: Record<string, unknown> }).details?.pid, sleeper.pid);
    assert.match((caught as Error).message, new RegExp(`in use by coordinator process ${sleeper.pid}`));
  } finally {
    sleeper.kill('SIGKILL');
  }
  await new Promise((resolve) => sleeper.once('exit', resolve));

  // A stale lock: its process is gone.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  assert.ok(deadPid > 0);
  writeFileSync(join(dir, 'lock'), `${deadPid}\n`);
  const taken = open(dir);
  assert.is(readFileSync(join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
  assert.equal(taken.events, [EVENTS[0]]);
  taken.j.close();
  // A lock naming this process but held by no journal here (pid reuse after a restart) is stale too.
  writeFileSync(join(dir, 'lock'), `${process.pid}\n`);
  const own = open(dir);
  own.j.close();
});

test('aggregates: stored, read back, released except those kept', () => {
  for (const make of [() => new MemoryJournal() as RoundJournal, () => new FileJournal(freshDir(), silent) as RoundJournal]) {
    const j = make();
    j.load();
    j.putAggregate(2, new Uint8Array([1, 2]));
    j.putAggregate(3, new Uint8Array([3]));
    j.putAggregate(4, new Uint8Array([4, 4, 4]));
    assert.equal(j.getAggregate(3), new Uint8Array([3]));
    assert.is(j.getAggregate(5), undefined);
    j.append(updateEvent('a', 4, 1, 1));
    j.release(4, [2, 4]);
    assert.equal(j.getAggregate(2), new Uint8Array([1, 2]));
    assert.is(j.getAggregate(3), undefined);
    assert.equal(j.getAggregate(4), new Uint8Array([4, 4, 4]));
    assert.throws(() => j.updateBodies(4, ['a']), (e: unknown) => isIcosflError(e, 'STATE_CORRUPT'), 'the round was released');
    j.close();
  }
});

test('MemoryJournal: events with bodies, checkpoint replaces them with a snapshot copy', () => {
  const j = new MemoryJournal();
  for (const e of EVENTS) j.append(e);
  assert.equal(j.load(), { snapshot: undefined, events: EVENTS });
  assert.equal(j.updateBodies(1, ['b']), [bodyOf(FEDAVG_PARAMS, -2)]);
  const state = new Driver().state;
  j.checkpoint(state);
  const loaded = j.load();
  assert.equal(loaded, { snapshot: state, events: [] });
  assert.is.not(loaded.snapshot, state, 'a copy');
});

test.run();
