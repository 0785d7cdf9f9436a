import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { seededRandom } from '../../../common/seeded-random.js';
import {
  CHUNK_HEADER_BYTES,
  ChunkAssembler,
  DEFAULT_CHUNK_BYTES,
  MIN_CHUNK_BYTES,
  parseChunk,
  splitMessage,
  type AssembleResult,
} from '../../../common/protocol/chunks.js';
import { decodeMessage, encodeMessage } from '../../../common/protocol/frame.js';
import type { Global, MessageType } from '../../../common/protocol/messages.js';
import { GLOBAL, PRESENCE, UPDATE } from './fixtures.js';

// chunks.ts on bytes: sizes and header fields of what splitMessage makes, reassembly in any
// order, and every refusal of ChunkAssembler, limits checked before anything is buffered.

const ALL: ReadonlySet<MessageType> = new Set(['announce', 'update', 'global', 'ack', 'presence']);
const STREAM = 'icosfl/v1/fed-1/global';

function globalOf(bodyBytes: number, seed = 1): Uint8Array {
  const rnd = seededRandom(seed);
  const body = Uint8Array.from({ length: bodyBytes }, () => Math.floor(rnd() * 256));
  return encodeMessage({ ...GLOBAL, body } satisfies Global);
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const rnd = seededRandom(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface RawChunk {
  magic?: number;
  version?: number;
  code?: number;
  reserved?: number;
  index: number;
  count: number;
  length: number;
  hash?: Uint8Array;
  data: Uint8Array;
}

/** A chunk byte by byte, following the table in chunks.ts. */
function rawChunk(c: RawChunk): Uint8Array {
  const out = new Uint8Array(52 + c.data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, c.magic ?? 0x43464349, true); // 'ICFC'
  out[4] = c.version ?? 1;
  out[5] = c.code ?? 3;
  v.setUint16(6, c.reserved ?? 0, true);
  v.setUint32(8, c.index, true);
  v.setUint32(12, c.count, true);
  v.setUint32(16, c.length, true);
  out.set(c.hash ?? new Uint8Array(32).fill(0xab), 20);
  out.set(c.data, 52);
  return out;
}

function expectRejected(r: AssembleResult, reason: string, detail?: RegExp): void {
  assert.is(r.kind, 'rejected', JSON.stringify(r));
  if (r.kind !== 'rejected') return;
  assert.is(r.reason, reason, r.detail);
  if (detail) assert.match(r.detail, detail);
}

test('splitMessage: sizes, count and every header field', () => {
  const message = globalOf(10_000);
  const L = message.length;
  const hash = createHash('sha256').update(message).digest();
  for (const chunkBytes of [MIN_CHUNK_BYTES, 1000, 4096, L + 52, L + 100]) {
    const chunks = splitMessage(message, chunkBytes);
    const n = Math.ceil(L / (chunkBytes - 52));
    const S = Math.ceil(L / n);
    assert.is(chunks.length, n, `chunkBytes ${chunkBytes}`);
    for (const [i, c] of chunks.entries()) {
      assert.ok(c.length <= chunkBytes, `chunk ${i} is ${c.length} bytes, over ${chunkBytes}`);
      assert.is(c.length, 52 + (i < n - 1 ? S : L - (n - 1) * S), `chunk ${i} size`);
      const v = new DataView(c.buffer, c.byteOffset, c.byteLength);
      assert.is(String.fromCharCode(...c.subarray(0, 4)), 'ICFC');
      assert.is(c[4], 1, 'version');
      assert.is(c[5], 3, 'type code of a global');
      assert.is(v.getUint16(6, true), 0, 'reserved');
      assert.is(v.getUint32(8, true), i, 'index');
      assert.is(v.getUint32(12, true), n, 'count');
      assert.is(v.getUint32(16, true), L, 'length');
      assert.equal([...c.subarray(20, 52)], [...hash], 'SHA-256 of the whole message');
      assert.equal([...c.subarray(52)], [...message.subarray(i * S, Math.min(L, (i + 1) * S))], `chunk ${i} data`);
    }
  }
  // A length that does not divide: the last chunk is strictly shorter.
  const odd = splitMessage(message, 1000);
  assert.ok(odd.at(-1)!.length < odd[0]!.length, `last ${odd.at(-1)!.length}, first ${odd[0]!.length}`);
  // A tiny message is one chunk of header + message.
  const small = encodeMessage(PRESENCE);
  const one = splitMessage(small);
  assert.is(one.length, 1);
  assert.is(one[0]!.length, CHUNK_HEADER_BYTES + small.length);
  assert.is(DEFAULT_CHUNK_BYTES, 256 * 1024);
});

test('splitMessage refuses bad sizes and what is not a frame', () => {
  const m = globalOf(100);
  assert.throws(() => splitMessage(m, MIN_CHUNK_BYTES - 1), (e: unknown) => e instanceof RangeError && /chunkBytes must be an integer ≥ 116, got 115/.test((e as Error).message));
  assert.throws(() => splitMessage(m, 1000.5), RangeError);
  assert.throws(() => splitMessage(new Uint8Array(100), 1000), (e: unknown) => e instanceof TypeError && /not an encoded message/.test((e as Error).message));
  // Over MAX_CHUNKS chunks: 65,537 × 64 bytes of payload.
  const huge = globalOf(65_536 * 64 + 1);
  assert.throws(() => splitMessage(huge, MIN_CHUNK_BYTES), (e: unknown) => e instanceof RangeError && /over 65536/.test((e as Error).message));
});

test('reassembly in any order gives the message back, once', () => {
  const message = globalOf(5000, 7);
  const chunks = splitMessage(message, 700);
  assert.ok(chunks.length >= 8);
  for (const seed of [1, 2, 3, 4, 5]) {
    const a = new ChunkAssembler({ accept: ALL });
    const order = shuffled(chunks, seed);
    for (const [k, c] of order.entries()) {
      const r = a.accept(STREAM, c, 0);
      if (k < order.length - 1) {
        assert.equal(r, { kind: 'partial', received: k + 1, count: chunks.length }, `seed ${seed}, chunk ${k}`);
        assert.is(a.pendingBytes, message.length);
        assert.is(a.pendingSets, 1);
      } else {
        assert.is(r.kind, 'complete');
        if (r.kind !== 'complete') return;
        assert.is(r.type, 'global');
        assert.equal([...r.message], [...message], `seed ${seed}`);
        assert.is(r.hash, createHash('sha256').update(message).digest('hex'));
        assert.equal(decodeMessage(r.message), decodeMessage(message));
      }
    }
    assert.is(a.pendingBytes, 0);
    assert.is(a.pendingSets, 0);
  }
});

test('a chunk repeated inside its set changes nothing; a completed message redelivered is a duplicate', () => {
  const message = globalOf(3000);
  const chunks = splitMessage(message, 500);
  const a = new ChunkAssembler({ accept: ALL });
  assert.equal(a.accept(STREAM, chunks[0]!, 0), { kind: 'partial', received: 1, count: chunks.length });
  assert.equal(a.accept(STREAM, chunks[0]!, 0), { kind: 'partial', received: 1, count: chunks.length });
  assert.equal(a.accept(STREAM, chunks[2]!, 0), { kind: 'partial', received: 2, count: chunks.length });
  assert.equal(a.accept(STREAM, chunks[2]!, 0), { kind: 'partial', received: 2, count: chunks.length });
  let last: AssembleResult | undefined;
  for (const c of chunks) last = a.accept(STREAM, c, 0);
  assert.is(last?.kind, 'complete');
  const hash = createHash('sha256').update(message).digest('hex');
  // QoS 1 redelivers: every chunk of the completed message is a duplicate, nothing is buffered.
  for (const c of chunks) assert.equal(a.accept(STREAM, c, 1), { kind: 'duplicate', hash });
  assert.is(a.pendingSets, 0);
  assert.is(a.pendingBytes, 0);
  // A single-chunk message too.
  const small = splitMessage(encodeMessage(PRESENCE))[0]!;
  assert.is(a.accept('p', small, 0).kind, 'complete');
  assert.is(a.accept('p', small, 0).kind, 'duplicate');
  // Redelivery memory is per stream, and forget() clears a stream's.
  assert.is(a.accept('other', chunks[0]!, 0).kind, 'partial');
  a.forget(STREAM);
  for (const c of chunks) last = a.accept(STREAM, c, 2);
  assert.is(last?.kind, 'complete');
});

test('the redelivery memory keeps the newest recentPerStream hashes', () => {
  const a = new ChunkAssembler({ accept: ALL, recentPerStream: 2 });
  const ms = [1, 2, 3].map((s) => splitMessage(encodeMessage({ ...PRESENCE, at: s }))[0]!);
  for (const m of ms) assert.is(a.accept('s', m, 0).kind, 'complete');
  assert.is(a.accept('s', ms[2]!, 0).kind, 'duplicate');
  assert.is(a.accept('s', ms[1]!, 0).kind, 'duplicate');
  assert.is(a.accept('s', ms[0]!, 0).kind, 'complete', 'the oldest was forgotten');
});

test('two sets interleaved on one stream both complete', () => {
  const m1 = globalOf(4000, 1);
  const m2 = globalOf(4321, 2);
  const c1 = splitMessage(m1, 600);
  const c2 = splitMessage(m2, 600);
  const a = new ChunkAssembler({ accept: ALL });
  const done: Uint8Array[] = [];
  for (let i = 0; i < Math.max(c1.length, c2.length); i++) {
    for (const c of [c2[c2.length - 1 - i], c1[i]]) {
      if (!c) continue;
      const r = a.accept(STREAM, c, 0);
      if (r.kind === 'complete') done.push(r.message);
      else assert.is(r.kind, 'partial');
    }
    if (i === 0) assert.is(a.pendingSets, 2);
  }
  assert.is(done.length, 2);
  assert.equal([...done.find((d) => d.length === m1.length)!], [...m1]);
  assert.equal([...done.find((d) => d.length === m2.length)!], [...m2]);
  assert.is(a.pendingBytes, 0);
});

test('an oversized message is refused on its first chunk, before any buffer exists', () => {
  const a = new ChunkAssembler({ accept: ALL, maxMessageBytes: { global: 10_000 } });
  const chunks = splitMessage(globalOf(20_000), 1000);
  expectRejected(a.accept(STREAM, chunks[0]!, 0), 'oversized', /a 20\d{3}-byte global message is over the 10000-byte limit/);
  assert.is(a.pendingBytes, 0);
  assert.is(a.pendingSets, 0);
  // A chunk claiming a 4 GiB message: were it allocated first, this process would not survive it.
  const claim = rawChunk({ code: 2, index: 0, count: 65_536, length: 0xffffffff, data: new Uint8Array(65_536) });
  expectRejected(a.accept('u', claim, 0), 'oversized', /4294967295-byte update message is over the 67108864-byte limit/);
  assert.is(a.pendingBytes, 0);
  // Per-type default limits: a presence may be 8 KiB.
  const bigPresence = rawChunk({ code: 5, index: 0, count: 2, length: 9000, data: new Uint8Array(4500) });
  expectRejected(a.accept('p', bigPresence, 0), 'oversized', /over the 8192-byte limit/);
});

test('too many bytes pending: a new set is refused until one completes', () => {
  const a = new ChunkAssembler({ accept: ALL, maxPendingBytes: 5000 });
  const m1 = globalOf(3000, 1);
  const m2 = globalOf(3000, 2);
  const c1 = splitMessage(m1, 1000);
  const c2 = splitMessage(m2, 1000);
  assert.is(a.accept(STREAM, c1[0]!, 0).kind, 'partial');
  assert.is(a.pendingBytes, m1.length);
  expectRejected(a.accept(STREAM, c2[0]!, 0), 'too-many-pending', new RegExp(`${m1.length} bytes already wait .* a ${m2.length}-byte set would pass 5000`));
  assert.is(a.pendingBytes, m1.length);
  assert.is(a.pendingSets, 1);
  // Chunks of the set already buffered are still taken.
  let r: AssembleResult | undefined;
  for (const c of c1.slice(1)) r = a.accept(STREAM, c, 0);
  assert.is(r?.kind, 'complete');
  assert.is(a.pendingBytes, 0);
  assert.is(a.accept(STREAM, c2[0]!, 0).kind, 'partial');
  // A single-chunk message needs no pending buffer: taken even with the budget spent.
  assert.is(a.accept('p', splitMessage(encodeMessage(PRESENCE))[0]!, 0).kind, 'complete');
});

test('a chunk that disagrees with its set (same hash, another count) is refused', () => {
  const message = globalOf(3000);
  const byFive = splitMessage(message, Math.ceil(message.length / 5) + 52);
  const bySeven = splitMessage(message, Math.ceil(message.length / 7) + 52);
  assert.is(byFive.length, 5);
  assert.is(bySeven.length, 7);
  const a = new ChunkAssembler({ accept: ALL });
  assert.is(a.accept(STREAM, byFive[0]!, 0).kind, 'partial');
  expectRejected(a.accept(STREAM, bySeven[1]!, 0), 'inconsistent-chunk', /chunk 1 disagrees with its set \(7 chunks/);
  assert.is(a.pendingBytes, message.length);
  // The set itself is unharmed.
  let r: AssembleResult | undefined;
  for (const c of byFive.slice(1)) r = a.accept(STREAM, c, 0);
  assert.is(r?.kind, 'complete');
});

test('parseChunk: header checks and a data length that does not fit the set', () => {
  const parse = (bytes: Uint8Array, reason: string, message: RegExp) => {
    let caught: unknown;
    try {
      parseChunk(bytes);
    } catch (err) {
      caught = err;
    }
    assert.ok(isIcosflError(caught, 'PROTOCOL_MALFORMED'), `expected PROTOCOL_MALFORMED, got ${String(caught)}`);
    const e = caught as Error & { details: Record<string, unknown> };
    assert.is(e.details.reason, reason);
    assert.match(e.message, message);
    // The assembler reports the same reason, without throwing.
    expectRejected(new ChunkAssembler({ accept: ALL }).accept('s', bytes, 0), reason, message);
  };
  const ok = { index: 0, count: 2, length: 10, data: new Uint8Array(5) };
  assert.equal(parseChunk(rawChunk(ok)).data.length, 5);
  parse(new Uint8Array(51), 'truncated', /51 bytes is shorter than its 52-byte header/);
  parse(rawChunk({ ...ok, magic: 0x4d464349 }), 'bad-magic', /bad magic/); // a frame's 'ICFM'
  parse(rawChunk({ ...ok, version: 2 }), 'unknown-version', /version 2/);
  parse(rawChunk({ ...ok, code: 0 }), 'unknown-type', /unknown message type 0/);
  parse(rawChunk({ ...ok, code: 7 }), 'unknown-type', /type 7/);
  parse(rawChunk({ ...ok, reserved: 1 }), 'reserved-nonzero', /reserved/);
  parse(rawChunk({ ...ok, count: 0 }), 'bad-chunk', /impossible/);
  parse(rawChunk({ ...ok, count: 65_537, length: 70_000 }), 'bad-chunk', /impossible/);
  parse(rawChunk({ ...ok, index: 2 }), 'bad-chunk', /chunk 2 of 2 .* impossible/);
  parse(rawChunk({ ...ok, length: 1 }), 'bad-chunk', /impossible/);
  parse(rawChunk({ ...ok, data: new Uint8Array(4) }), 'bad-chunk', /chunk 0 of 2 carries 4 bytes, 5 expected/);
  parse(rawChunk({ ...ok, data: new Uint8Array(6) }), 'bad-chunk', /carries 6 bytes, 5 expected/);
  parse(rawChunk({ ...ok, index: 1, length: 9, data: new Uint8Array(5) }), 'bad-chunk', /carries 5 bytes, 4 expected/);
  // A real chunk one byte short.
  const real = splitMessage(globalOf(2000), 500);
  parse(real[1]!.subarray(0, real[1]!.length - 1), 'bad-chunk', /expected/);
  // A set whose last chunk would be empty (5 bytes in 4 chunks of ceil(5/4) = 2) can never
  // complete: refused on any of its chunks, nothing buffered.
  parse(rawChunk({ index: 0, count: 4, length: 5, data: new Uint8Array(2) }), 'bad-chunk', /impossible/);
  parse(rawChunk({ index: 3, count: 4, length: 5, data: new Uint8Array(0) }), 'bad-chunk', /impossible/);
  assert.throws(() => parseChunk('x' as unknown as Uint8Array), TypeError);
});

test('a tampered byte fails the SHA-256 check; nothing stays buffered', () => {
  const message = globalOf(3000);
  const chunks = splitMessage(message, 800).map((c) => c.slice());
  chunks[2]![60] = chunks[2]![60]! ^ 0x01;
  const a = new ChunkAssembler({ accept: ALL });
  let r: AssembleResult | undefined;
  for (const c of chunks) r = a.accept(STREAM, c, 0);
  expectRejected(r!, 'hash-mismatch', /does not match its SHA-256/);
  assert.is(a.pendingBytes, 0);
  assert.is(a.pendingSets, 0);
  // Not remembered as delivered: the genuine chunks are then taken.
  for (const c of splitMessage(message, 800)) r = a.accept(STREAM, c, 0);
  assert.is(r!.kind, 'complete');
  // One chunk, tampered.
  const single = splitMessage(encodeMessage(PRESENCE))[0]!.slice();
  single[single.length - 2] = single[single.length - 2]! ^ 0x20;
  expectRejected(a.accept('p', single, 0), 'hash-mismatch');
});

test('expire() frees incomplete sets after the timeout and reports them', () => {
  const a = new ChunkAssembler({ accept: ALL, timeoutMs: 5000 });
  const message = globalOf(3000);
  const chunks = splitMessage(message, 1000);
  const hash = createHash('sha256').update(message).digest('hex');
  assert.is(a.accept(STREAM, chunks[0]!, 1000).kind, 'partial');
  assert.is(a.accept(STREAM, chunks[1]!, 5500).kind, 'partial');
  // A stream name with a newline (a topic may hold one) is reported whole.
  const odd = 'icosfl/v1/f/update/x\ny';
  assert.is(a.accept(odd, chunks[0]!, 3000).kind, 'partial');
  assert.equal(a.expire(5999), []);
  assert.is(a.pendingSets, 2);
  assert.equal(a.expire(6000), [{ stream: STREAM, hash, type: 'global', received: 2, count: chunks.length }]);
  assert.is(a.pendingBytes, message.length);
  assert.equal(a.expire(8000), [{ stream: odd, hash, type: 'global', received: 1, count: chunks.length }]);
  assert.is(a.pendingBytes, 0);
  assert.is(a.pendingSets, 0);
  // The rest of an expired set starts a new one.
  assert.equal(a.accept(STREAM, chunks[2]!, 9000), { kind: 'partial', received: 1, count: chunks.length });
});

test('a type the receiver does not take is refused unbuffered', () => {
  const a = new ChunkAssembler({ accept: new Set(['update', 'ack', 'presence']) });
  const chunks = splitMessage(globalOf(3000), 1000);
  expectRejected(a.accept(STREAM, chunks[0]!, 0), 'type-not-accepted', /a global message is not taken here/);
  assert.is(a.pendingBytes, 0);
  assert.is(a.pendingSets, 0);
  assert.is(a.accept('u', splitMessage(encodeMessage(UPDATE))[0]!, 0).kind, 'complete');
});

test('a 10 MiB message through 256 KiB chunks', () => {
  const message = globalOf(10 * 1024 * 1024, 11);
  const chunks = splitMessage(message);
  assert.is(chunks.length, Math.ceil(message.length / (256 * 1024 - 52)));
  assert.is(chunks.length, 41);
  for (const c of chunks) assert.ok(c.length <= 256 * 1024);
  const a = new ChunkAssembler({ accept: ALL });
  let r: AssembleResult | undefined;
  for (const c of shuffled(chunks, 99)) r = a.accept(STREAM, c, 0);
  assert.is(r!.kind, 'complete');
  if (r!.kind !== 'complete') return;
  assert.ok(Buffer.from(r!.message).equals(Buffer.from(message)));
  const g = decodeMessage(r!.message) as Global;
  assert.is(g.body.length, 10 * 1024 * 1024);
  assert.ok(Buffer.from(g.body).equals(Buffer.from(message.subarray(message.length - g.body.length))));
  assert.is(a.pendingBytes, 0);
});

test('senderBudget: a set is charged once, on its first chunk, before its buffer; redeliveries are free; resetBudgets() starts afresh', () => {
  const message = globalOf(3000);
  const chunks = splitMessage(message, MIN_CHUNK_BYTES + 1000);
  assert.ok(chunks.length > 1);
  const a = new ChunkAssembler({ accept: ALL, senderBudget: { maxBytes: message.length * 2, maxSets: 1, countedTypes: new Set(['global']) } });
  for (const c of chunks) a.accept(STREAM, c, 0, 'agent-1');
  for (const c of chunks) assert.is(a.accept(STREAM, c, 0, 'agent-1').kind, 'duplicate'); // redelivered: not charged
  const other = globalOf(3000, 2);
  const refused = a.accept(STREAM, splitMessage(other, MIN_CHUNK_BYTES + 1000)[0]!, 0, 'agent-1');
  assert.is(refused.kind === 'rejected' && refused.reason, 'rate-limited');
  assert.is(a.pendingBytes, 0);
  // Another sender has its own allowance; a reset gives agent-1 its own back.
  assert.is(a.accept(STREAM, splitMessage(other, MIN_CHUNK_BYTES + 1000)[0]!, 0, 'agent-2').kind, 'partial');
  a.resetBudgets();
  assert.is(a.accept('another-stream', splitMessage(other, MIN_CHUNK_BYTES + 1000)[0]!, 0, 'agent-1').kind, 'partial');
});

test.run();
