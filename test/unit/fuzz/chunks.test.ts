import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CHUNK_HEADER_BYTES, CHUNK_MAGIC, ChunkAssembler, MAX_CHUNKS, MIN_CHUNK_BYTES, parseChunk, sha256, splitMessage } from '../../../common/protocol/chunks.js';
import { encodeMessage, rejectReason } from '../../../common/protocol/frame.js';
import type { MessageType } from '../../../common/protocol/messages.js';
import { FUZZ_RUNS, FUZZ_SEED, Tally, applyMutations, arrayBufferBytes, fuzzOptions, mutationArb, refusal, runsShare } from '../../helpers/fuzz.js';
import { ACK, GLOBAL, PRESENCE, UPDATE } from '../protocol/fixtures.js';

// common/protocol/chunks.ts on hostile chunks: parseChunk on random and mutated bytes, and
// ChunkAssembler on generated sessions: several messages split small, chunks shuffled across
// streams, duplicated, mutated (wrong hashes, huge declared counts and lengths), the clock
// jumping. Invariants: no crash, held bytes never above the limit, only real messages complete,
// and every incomplete set is gone once its timeout passes.
const PROTOCOL = new Set(['PROTOCOL_MALFORMED'] as const);
const ALL: ReadonlySet<MessageType> = new Set(['announce', 'update', 'global', 'ack', 'presence']);
const TIMEOUT_MS = 10_000;
const MAX_PENDING = 64 * 1024;
const MESSAGES = [
  encodeMessage({ ...UPDATE, body: Uint8Array.from({ length: 200 }, (_, i) => (i * 31) & 0xff) }),
  encodeMessage({ ...GLOBAL, body: Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff) }),
  encodeMessage(ACK),
  encodeMessage(PRESENCE),
];
const HASHES = MESSAGES.map((m) => Buffer.from(sha256(m)).toString('hex'));
// Two to seven chunks a message: enough for interleavings, few enough for 100,000 sessions in seconds.
const CHUNKS = MESSAGES.map((m) => splitMessage(m, CHUNK_HEADER_BYTES + Math.max(MIN_CHUNK_BYTES - CHUNK_HEADER_BYTES, Math.ceil(m.length / 3))));
const CHUNK_FIELDS = [8, 12, 16, 20, 24];
// The header parser alone gets a share; whole sessions through the assembler get FUZZ_RUNS.
const PARSE_RUNS = runsShare(0.3);
console.log(`  chunk fuzz: seed ${FUZZ_SEED}, ${PARSE_RUNS} chunks into parseChunk, ${FUZZ_RUNS} sessions into ChunkAssembler`);

test(`parseChunk on random and mutated bytes (${PARSE_RUNS}): refused with a reason or self-consistent`, () => {
  const tally = new Tally();
  const random = fc.uint8Array({ maxLength: 300, size: 'max' }).map((b) => {
    if (b.length >= 6 && b[0]! < 128) new DataView(b.buffer, b.byteOffset).setUint32(0, CHUNK_MAGIC, true), (b[4] = 1), (b[5] = 1 + (b[5]! % 5));
    return b;
  });
  // Half keep their first 8 bytes (magic, version, type, reserved), so mutations reach index, count, length and data.
  const mutated = fc.tuple(fc.nat({ max: CHUNKS.length - 1 }), fc.nat(), mutationArb(CHUNK_FIELDS), fc.boolean()).map(([m, c, ms, keep]) => {
    const base = CHUNKS[m]![c % CHUNKS[m]!.length]!;
    const b = applyMutations(base, ms);
    if (keep && b.length >= 8) b.set(base.subarray(0, 8));
    return b;
  });
  fc.assert(
    fc.property(fc.oneof(random, mutated), (b) => {
      let header: ReturnType<typeof parseChunk> | undefined;
      const err = refusal(PROTOCOL, () => (header = parseChunk(b)));
      if (err) return tally.add(rejectReason(err)!);
      const h = header!;
      const S = Math.ceil(h.length / h.count);
      assert.ok(h.count >= 1 && h.count <= MAX_CHUNKS && h.index < h.count);
      assert.is(h.data.length, Math.min(h.length, (h.index + 1) * S) - h.index * S);
      tally.add('parsed');
    }),
    fuzzOptions(PARSE_RUNS),
  );
  console.log('  parseChunk:', tally.toJSON());
  assert.ok(tally.get('parsed') > 0 && tally.get('bad-chunk') > 0);
});

type Event = { stream: number; bytes: Uint8Array; advanceMs: number; hostile: boolean };

/** A session: every chunk of some messages on some streams, shuffled, some sent twice, some mutated or forged. */
const sessionArb = fc
  .record({
    picks: fc.array(fc.record({ message: fc.nat({ max: MESSAGES.length - 1 }), stream: fc.nat({ max: 2 }) }), { minLength: 1, maxLength: 4 }),
    order: fc.array(fc.nat(), { maxLength: 32 }),
    duplicates: fc.array(fc.nat(), { maxLength: 4 }),
    mutations: fc.array(fc.tuple(fc.nat(), mutationArb(CHUNK_FIELDS)), { maxLength: 3 }),
    forged: fc.array(
      fc.record({ stream: fc.nat({ max: 2 }), type: fc.integer({ min: 1, max: 5 }), index: fc.constantFrom(0, 1, 2 ** 16 - 1, 2 ** 32 - 1), count: fc.constantFrom(1, 2, 3, MAX_CHUNKS, MAX_CHUNKS + 1, 2 ** 32 - 1), length: fc.constantFrom(3, 64, 5000, 2 ** 20, 2 ** 26, 2 ** 31, 2 ** 32 - 1), hash: fc.uint8Array({ minLength: 32, maxLength: 32 }), data: fc.uint8Array({ maxLength: 64 }) }),
      { maxLength: 3 },
    ),
    advances: fc.array(fc.constantFrom(0, 1, 100, TIMEOUT_MS - 1, TIMEOUT_MS, 3 * TIMEOUT_MS), { maxLength: 32 }),
    expireEvery: fc.integer({ min: 1, max: 20 }),
  })
  .map((s) => {
    const events: Event[] = [];
    for (const p of s.picks) for (const c of CHUNKS[p.message]!) events.push({ stream: p.stream, bytes: c, advanceMs: 0, hostile: false });
    for (const d of s.duplicates) events.push({ ...events[d % events.length]! });
    for (const [at, ms] of s.mutations) events.push({ stream: events[at % events.length]!.stream, bytes: applyMutations(events[at % events.length]!.bytes, ms), advanceMs: 0, hostile: true });
    for (const f of s.forged) {
      // The data length the header implies where it is small, so forged claims get past parseChunk to the limits.
      const S = Math.ceil((f.length >>> 0) / (f.count >>> 0));
      const implied = Math.min(f.length >>> 0, (f.index + 1) * S) - f.index * S;
      const data = implied >= 1 && implied <= 256 ? new Uint8Array(implied).fill(f.data[0] ?? 7) : f.data;
      const b = new Uint8Array(CHUNK_HEADER_BYTES + data.length);
      const v = new DataView(b.buffer);
      v.setUint32(0, CHUNK_MAGIC, true);
      v.setUint8(4, 1);
      v.setUint8(5, f.type);
      v.setUint32(8, f.index >>> 0, true);
      v.setUint32(12, f.count >>> 0, true);
      v.setUint32(16, f.length >>> 0, true);
      b.set(f.hash, 20);
      b.set(data, CHUNK_HEADER_BYTES);
      events.push({ stream: f.stream, bytes: b, advanceMs: 0, hostile: true });
    }
    // Fisher–Yates driven by the generated order: every interleaving of streams and sets is reachable.
    for (let i = events.length - 1; i > 0; i--) {
      const j = (s.order[i % Math.max(1, s.order.length)] ?? 0) % (i + 1);
      [events[i], events[j]] = [events[j]!, events[i]!];
    }
    events.forEach((e, i) => (e.advanceMs = s.advances[i] ?? 0));
    return { events, expireEvery: s.expireEvery };
  });

test(`ChunkAssembler sessions (${FUZZ_RUNS}): bounded memory, only real messages complete, incomplete sets time out`, () => {
  const tally = new Tally();
  let fed = 0;
  fc.assert(
    fc.property(sessionArb, ({ events, expireEvery }) => {
      fed += events.length;
      const asm = new ChunkAssembler({ accept: ALL, maxMessageBytes: { update: 4096, global: 4096 }, maxPendingBytes: MAX_PENDING, timeoutMs: TIMEOUT_MS, recentPerStream: 4 });
      let now = 1_000_000;
      const clean = events.every((e) => !e.hostile && e.advanceMs < TIMEOUT_MS / 100);
      const completed = new Set<string>();
      events.forEach((e, i) => {
        now += e.advanceMs;
        const r = asm.accept(`stream-${e.stream}`, e.bytes, now);
        tally.add(r.kind === 'rejected' ? r.reason : r.kind);
        if (r.kind === 'complete') {
          // Only a message that was really sent can come out, byte for byte.
          const k = HASHES.indexOf(r.hash);
          assert.ok(k >= 0, 'a completed message is one of the messages sent');
          assert.equal(r.message, MESSAGES[k]);
          completed.add(`${e.stream}:${r.hash}`);
        }
        assert.ok(asm.pendingBytes >= 0 && asm.pendingBytes <= MAX_PENDING, `pending ${asm.pendingBytes}`);
        if (i % expireEvery === 0) asm.expire(now);
      });
      if (clean) {
        // Without interference every message sent on a stream is completed there.
        for (const e of events) assert.ok(completed.has(`${e.stream}:${Buffer.from(e.bytes.subarray(20, 52)).toString('hex')}`), 'every clean message completes');
      }
      asm.expire(now + TIMEOUT_MS);
      assert.is(asm.pendingSets, 0);
      assert.is(asm.pendingBytes, 0);
    }),
    fuzzOptions(),
  );
  console.log(`  assembler (${fed} chunks):`, tally.toJSON());
  for (const k of ['complete', 'partial', 'duplicate', 'bad-chunk', 'oversized', 'hash-mismatch']) assert.ok(tally.get(k) > 0, `some chunks ended ${k}`);
});

test('first chunks of sets declaring the largest lengths hold no more than maxPendingBytes', () => {
  const limit = 4 * 1024 * 1024;
  const asm = new ChunkAssembler({ accept: ALL, maxPendingBytes: limit, timeoutMs: TIMEOUT_MS });
  // One input buffer per claimed length, rewritten each time (the assembler copies what it keeps):
  // 1,000 fresh 32 KiB inputs would be garbage the measurement counts until a GC happens to run.
  const inputs = [2 ** 31, 64 * 1024 * 1024].map((length) => {
    const b = new Uint8Array(CHUNK_HEADER_BYTES + Math.ceil(length / MAX_CHUNKS));
    const v = new DataView(b.buffer);
    v.setUint32(0, CHUNK_MAGIC, true);
    v.setUint8(4, 1);
    v.setUint8(5, 2);
    v.setUint32(12, MAX_CHUNKS, true);
    v.setUint32(16, length, true);
    return { b, v };
  });
  const before = arrayBufferBytes();
  const tally = new Tally();
  for (let i = 0; i < 2000; i++) {
    // A forged first chunk of a 65,536-chunk update at the 64 MiB default limit, or of 2^31 bytes.
    const { b, v } = inputs[i % 2]!;
    v.setUint32(20, i, true); // a new set each time
    const r = asm.accept('icosfl/v1/f/update/evil', b, 0);
    tally.add(r.kind === 'rejected' ? r.reason : r.kind);
    assert.ok(asm.pendingBytes <= limit);
  }
  const grown = arrayBufferBytes() - before;
  console.log('  claims:', tally.toJSON(), `array buffers +${grown} bytes`);
  assert.is(tally.get('oversized'), 1000);
  assert.is(tally.get('too-many-pending'), 1000);
  assert.ok(grown < limit + 8 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
});

test.run();
