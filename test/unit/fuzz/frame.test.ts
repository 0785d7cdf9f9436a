import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_HEADER_BYTES, MESSAGE_HEADER_BYTES, MESSAGE_MAGIC, decodeMessage, encodeMessage, rejectReason } from '../../../common/protocol/frame.js';
import { MESSAGE_TYPES, type Message } from '../../../common/protocol/messages.js';
import { FUZZ_SEED, Tally, applyMutations, arrayBufferBytes, fuzzOptions, mutationArb, refusal, refusedWith, runsShare } from '../../helpers/fuzz.js';
import { EVERY_MESSAGE, headerFields } from '../protocol/fixtures.js';

// common/protocol/frame.ts decodeMessage on hostile bytes: random bytes, mutations of every valid
// encoding, and structure-aware frames (consistent lengths, header JSON with fields replaced,
// added or removed). Each input is refused with PROTOCOL_MALFORMED and a reason, or decodes to a
// message that encodes and decodes back to itself; nothing else may escape.
const PROTOCOL = new Set(['PROTOCOL_MALFORMED'] as const);
const ENCODED = EVERY_MESSAGE.map(([, m]) => encodeMessage(m));
// FUZZ_RUNS inputs in all, split between the three strategies.
const RANDOM_RUNS = runsShare(0.3);
const MUTATION_RUNS = runsShare(0.35);
const STRUCTURE_RUNS = runsShare(0.35);
console.log(`  frame fuzz: seed ${FUZZ_SEED}, ${RANDOM_RUNS + MUTATION_RUNS + STRUCTURE_RUNS} inputs`);

function decodeChecked(bytes: Uint8Array, tally: Tally): void {
  let message: Message | undefined;
  const err = refusal(PROTOCOL, () => (message = decodeMessage(bytes)));
  if (!err) {
    // An accepted message must be one this build would send, and read back as itself.
    assert.equal(decodeMessage(encodeMessage(message!)), message);
    tally.add(`accepted ${message!.type}`);
  } else {
    const reason = rejectReason(err);
    assert.type(reason, 'string');
    tally.add(reason!);
  }
}

/** A frame whose fixed header is consistent with what follows, so the JSON and schema paths are reached. */
function frameOf(typeCode: number, header: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(MESSAGE_HEADER_BYTES + header.length + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, MESSAGE_MAGIC, true);
  v.setUint8(4, 1);
  v.setUint8(5, typeCode);
  v.setUint32(8, header.length, true);
  v.setUint32(12, body.length, true);
  out.set(header, MESSAGE_HEADER_BYTES);
  out.set(body, MESSAGE_HEADER_BYTES + header.length);
  return out;
}

test(`random bytes (${RANDOM_RUNS}): refused with a reason, never a crash`, () => {
  const tally = new Tally();
  // Half the inputs start with the real magic and version so the later checks see them too.
  const prefixed = fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 200, size: 'max' })).map(([real, b]) => {
    if (real && b.length >= 6) new DataView(b.buffer, b.byteOffset).setUint32(0, MESSAGE_MAGIC, true), (b[4] = 1);
    return b;
  });
  fc.assert(fc.property(prefixed, (b) => decodeChecked(b, tally)), fuzzOptions(RANDOM_RUNS));
  console.log('  random bytes:', tally.toJSON());
  assert.ok(tally.get('bad-magic') > 0 && tally.get('unknown-type') > 0);
});

test(`mutations of valid encodings (${MUTATION_RUNS}): refused or re-encodable`, () => {
  const tally = new Tally();
  // Half keep their first 8 bytes (magic, version, type, reserved), so mutations reach the lengths, the JSON and the schema.
  const arb = fc.tuple(fc.nat({ max: ENCODED.length - 1 }), mutationArb([0, 4, 8, 12]), fc.boolean()).map(([i, ms, keep]) => {
    const b = applyMutations(ENCODED[i]!, ms);
    if (keep && b.length >= 8) b.set(ENCODED[i]!.subarray(0, 8));
    return b;
  });
  fc.assert(fc.property(arb, (b) => decodeChecked(b, tally)), fuzzOptions(MUTATION_RUNS));
  console.log('  mutations:', tally.toJSON());
  assert.ok(tally.get('bad-header') > 0 && tally.get('bad-length') > MUTATION_RUNS / 10 && tally.get('accepted update') > 0);
});

test(`structure-aware headers (${STRUCTURE_RUNS}): consistent lengths, hostile JSON fields`, () => {
  const tally = new Tally();
  const field = fc.constantFrom('federation', 'agent', 'session', 'round', 'phase', 'samples', 'windows', 'codec', 'model', 'selection', 'ok', 'state', 'at', 'type', '__proto__', 'constructor', 'extra');
  const edit = fc.oneof(
    fc.record({ replace: field, value: fc.jsonValue({ maxDepth: 3 }) }),
    fc.record({ replace: field, value: fc.constantFrom(-1, 0, 2 ** 32, 2 ** 53, 1e308, -0, 0.5, '', 'x'.repeat(70), 'a/b', null, [], {}) }),
    fc.record({ remove: field }),
  );
  const arb = fc.tuple(fc.nat({ max: EVERY_MESSAGE.length - 1 }), fc.array(edit, { maxLength: 4 }), fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 64 }), fc.boolean()).map(([i, edits, typeCode, body, raw]) => {
    const [, base] = EVERY_MESSAGE[i]!;
    const fields: Record<string, unknown> = headerFields(base);
    for (const e of edits) {
      if ('remove' in e) delete fields[e.remove];
      else Object.defineProperty(fields, e.replace, { value: e.value, enumerable: true, configurable: true, writable: true });
    }
    // Some headers are raw JSON text cut short or padded: invalid UTF-8 and JSON must be refused too.
    let text = JSON.stringify(fields);
    if (raw) text = text.slice(0, Math.floor(text.length * (body[0] ?? 0) / 256)) + (body.length % 2 ? '\u0000\uFFFF' : '');
    const bodyBytes = typeCode === 2 || typeCode === 3 ? body : new Uint8Array(0);
    return frameOf(typeCode === 0 ? (base.type === 'announce' ? 1 : base.type === 'update' ? 2 : base.type === 'global' ? 3 : base.type === 'ack' ? 4 : 5) : typeCode, Buffer.from(text, 'utf8'), bodyBytes);
  });
  fc.assert(fc.property(arb, (b) => decodeChecked(b, tally)), fuzzOptions(STRUCTURE_RUNS));
  console.log('  structure-aware:', tally.toJSON());
  for (const t of MESSAGE_TYPES) assert.ok(tally.get(`accepted ${t}`) > 0, `some ${t} frames were accepted`);
  assert.ok(tally.get('bad-header') > STRUCTURE_RUNS / 10);
});

test('length fields claiming 2^31 bytes are refused before anything is allocated', () => {
  const before = arrayBufferBytes();
  let refused = 0;
  for (const [h, b] of [[2 ** 31, 0], [16, 2 ** 31], [2 ** 32 - 1, 2 ** 32 - 1], [MAX_HEADER_BYTES, 2 ** 31 - MESSAGE_HEADER_BYTES - MAX_HEADER_BYTES]] as const) {
    for (const typeCode of [1, 2, 3, 4, 5]) {
      const frame = frameOf(typeCode, Buffer.from('{}'), new Uint8Array(0));
      const v = new DataView(frame.buffer);
      v.setUint32(8, h, true);
      v.setUint32(12, b, true);
      for (let i = 0; i < 100; i++) {
        assert.is(refusedWith(PROTOCOL, () => decodeMessage(frame)), 'PROTOCOL_MALFORMED');
        refused++;
      }
    }
  }
  const grown = arrayBufferBytes() - before;
  assert.is(refused, 2000);
  // 2,000 refusals of 2 GiB claims: a single allocation of the claimed size would show as ≥ 2^31.
  assert.ok(grown < 8 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
});

test.run();
