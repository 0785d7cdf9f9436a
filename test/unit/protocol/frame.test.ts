import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IcosflError, isIcosflError } from '../../../common/errors.js';
import { MAX_HEADER_BYTES, decodeMessage, encodeMessage, peekType, rejectReason, type RejectReason } from '../../../common/protocol/frame.js';
import type { Message, MessageType } from '../../../common/protocol/messages.js';
import { ACK, ANNOUNCE, DOCUMENTED_CODES, EVERY_MESSAGE, GLOBAL, PRESENCE, UPDATE, headerFields } from './fixtures.js';

// frame.ts on bytes: the documented byte table, the round trip, and every rejection reason
// produced from a frame built by hand (not by encodeMessage, so a shared bug cannot hide).

interface RawFrame {
  magic?: number[];
  version?: number;
  code?: number;
  reserved?: [number, number];
  header?: string | Uint8Array;
  headerLength?: number;
  body?: Uint8Array;
  bodyLength?: number;
}

/** A frame byte by byte, following the header comment of frame.ts; every field overridable. */
function rawFrame(f: RawFrame): Uint8Array {
  const header = typeof f.header === 'string' ? new TextEncoder().encode(f.header) : (f.header ?? new TextEncoder().encode('{}'));
  const body = f.body ?? new Uint8Array(0);
  const out = new Uint8Array(16 + header.length + body.length);
  out.set(f.magic ?? [0x49, 0x43, 0x46, 0x4d], 0); // 'I' 'C' 'F' 'M'
  out[4] = f.version ?? 1;
  out[5] = f.code ?? 5;
  out[6] = f.reserved?.[0] ?? 0;
  out[7] = f.reserved?.[1] ?? 0;
  const v = new DataView(out.buffer);
  v.setUint32(8, f.headerLength ?? header.length, true);
  v.setUint32(12, f.bodyLength ?? body.length, true);
  out.set(header, 16);
  out.set(body, 16 + header.length);
  return out;
}

const json = (m: Message) => JSON.stringify(headerFields(m));

function rejection(bytes: Uint8Array, accept?: ReadonlySet<MessageType>): IcosflError {
  let caught: unknown;
  try {
    decodeMessage(bytes, accept);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, 'the frame was accepted');
  assert.ok(isIcosflError(caught, 'PROTOCOL_MALFORMED'), `expected PROTOCOL_MALFORMED, got ${String(caught)}`);
  return caught as IcosflError;
}

function expectReject(bytes: Uint8Array, reason: RejectReason, message: RegExp, accept?: ReadonlySet<MessageType>): IcosflError {
  const err = rejection(bytes, accept);
  assert.is(err.details?.reason, reason, err.message);
  assert.is(rejectReason(err), reason);
  assert.match(err.message, message);
  return err;
}

test('every message type survives encode → decode, fields and body alike', () => {
  for (const [what, m] of EVERY_MESSAGE) {
    const bytes = encodeMessage(m);
    const back = decodeMessage(bytes);
    assert.equal(back, m, what);
  }
});

test('a decoded body is an aligned copy: later changes to the frame bytes do not show through, and crypto can read it', () => {
  for (const m of [UPDATE, GLOBAL]) {
    const bytes = encodeMessage(m);
    const back = decodeMessage(bytes) as Message & { body: Uint8Array };
    const H = new TextEncoder().encode(json(m)).length;
    assert.is.not(back.body.buffer, bytes.buffer, `${m.type}: its own buffer`);
    assert.is(back.body.byteOffset, 0, 'aligned at 0 (typed-array views need 4- and 8-byte alignment)');
    assert.equal(back.body, m.body);
    bytes[16 + H] = bytes[16 + H]! ^ 0xff;
    assert.is(back.body[0], m.body[0], 'the body does not change with the frame bytes');
  }
  // A frame inside a larger Buffer at an odd offset (as MQTT hands payloads over: Buffer.slice is a view).
  const inner = encodeMessage(UPDATE);
  const outer = Buffer.alloc(inner.length + 10);
  outer.set(inner, 7);
  const back = decodeMessage(outer.subarray(7, 7 + inner.length)) as typeof UPDATE;
  assert.equal(Array.from(back.body), Array.from(UPDATE.body));
  assert.is(back.body.byteOffset, 0);
  assert.is(back.body.buffer.byteLength, UPDATE.body.length, 'not a view into the pooled Buffer');
});

test('the bytes match the byte table of the header comment', () => {
  for (const [what, m] of EVERY_MESSAGE) {
    const bytes = encodeMessage(m);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const header = new TextEncoder().encode(json(m));
    const body = 'body' in m ? m.body : new Uint8Array(0);
    assert.equal([...bytes.subarray(0, 4)], [0x49, 0x43, 0x46, 0x4d], `${what}: magic 'ICFM'`);
    assert.is(String.fromCharCode(...bytes.subarray(0, 4)), 'ICFM');
    assert.is(bytes[4], 1, `${what}: version`);
    assert.is(bytes[5], DOCUMENTED_CODES[m.type], `${what}: type code`);
    assert.is(v.getUint16(6, true), 0, `${what}: reserved`);
    assert.is(v.getUint32(8, true), header.length, `${what}: header length at 8`);
    assert.is(v.getUint32(12, true), body.length, `${what}: body length at 12`);
    assert.is(bytes.length, 16 + header.length + body.length, `${what}: total`);
    assert.equal(JSON.parse(Buffer.from(bytes.subarray(16, 16 + header.length)).toString('utf8')), headerFields(m), `${what}: header JSON at 16`);
    assert.not.ok('type' in JSON.parse(Buffer.from(bytes.subarray(16, 16 + header.length)).toString('utf8')), `${what}: no type field in the header`);
    assert.equal([...bytes.subarray(16 + header.length)], [...body], `${what}: body at 16+H`);
    assert.is(peekType(bytes), m.type);
  }
  // The hand-made frame of a valid presence decodes: the table and the decoder agree both ways.
  assert.equal(decodeMessage(rawFrame({ code: 5, header: json(PRESENCE) })), PRESENCE);
  assert.equal(decodeMessage(rawFrame({ code: 2, header: json(UPDATE), body: UPDATE.body })), UPDATE);
});

test('peekType reads the type without parsing, undefined for what is not a frame', () => {
  assert.is(peekType(rawFrame({ code: 3, header: 'not json' })), 'global');
  assert.is(peekType(rawFrame({ code: 9 })), undefined);
  assert.is(peekType(rawFrame({ magic: [0x49, 0x43, 0x46, 0x43] })), undefined);
  assert.is(peekType(new Uint8Array(15)), undefined);
});

test('truncated, bad magic, unknown version, unknown type, reserved bytes', () => {
  const good = rawFrame({ code: 5, header: json(PRESENCE) });
  expectReject(new Uint8Array(0), 'truncated', /0 bytes is shorter than its 16-byte header/);
  expectReject(good.subarray(0, 15), 'truncated', /15 bytes/);
  expectReject(rawFrame({ magic: [0x49, 0x43, 0x46, 0x43], header: json(PRESENCE) }), 'bad-magic', /bad magic/); // a chunk's 'ICFC'
  expectReject(rawFrame({ magic: [0, 0, 0, 0], header: json(PRESENCE) }), 'bad-magic', /bad magic/);
  const v2 = expectReject(rawFrame({ version: 2, header: json(PRESENCE) }), 'unknown-version', /protocol version 2; this build speaks 1/);
  assert.is(v2.details?.version, 2);
  expectReject(rawFrame({ version: 0, header: json(PRESENCE) }), 'unknown-version', /protocol version 0/);
  expectReject(rawFrame({ code: 0, header: json(PRESENCE) }), 'unknown-type', /unknown message type 0/);
  expectReject(rawFrame({ code: 7, header: json(PRESENCE) }), 'unknown-type', /unknown message type 7/);
  expectReject(rawFrame({ code: 255, header: json(PRESENCE) }), 'unknown-type', /unknown message type 255/);
  // Byte 6 is the flags byte: bit 0 (signed) is defined, the others are reserved.
  expectReject(rawFrame({ reserved: [2, 0], header: json(PRESENCE) }), 'reserved-nonzero', /reserved/);
  expectReject(rawFrame({ reserved: [1, 0], header: json(PRESENCE) }), 'bad-length', /signature block/);
  expectReject(rawFrame({ reserved: [0, 0x80], header: json(PRESENCE) }), 'reserved-nonzero', /reserved/);
});

test('bad lengths', () => {
  expectReject(rawFrame({ header: '{' }), 'bad-length', /header length 1 is outside 2…65536/);
  expectReject(rawFrame({ header: '', headerLength: 0 }), 'bad-length', /header length 0/);
  expectReject(rawFrame({ header: json(PRESENCE), headerLength: MAX_HEADER_BYTES + 1 }), 'bad-length', /header length 65537/);
  // The header length must account for every byte: one more, one fewer than arrived.
  const p = json(PRESENCE);
  const longer = expectReject(rawFrame({ header: p, headerLength: p.length + 1 }), 'bad-length', new RegExp(`announces ${16 + p.length + 1} bytes, ${16 + p.length} arrived`));
  assert.is(longer.details?.length, 16 + p.length);
  expectReject(rawFrame({ header: p, headerLength: p.length - 1 }), 'bad-length', /arrived/);
  const u = json(UPDATE);
  expectReject(rawFrame({ code: 2, header: u, body: UPDATE.body, bodyLength: UPDATE.body.length + 1 }), 'bad-length', /arrived/);
  expectReject(rawFrame({ code: 2, header: u, body: UPDATE.body, bodyLength: UPDATE.body.length - 1 }), 'bad-length', /arrived/);
  expectReject(rawFrame({ code: 2, header: u, body: UPDATE.body, bodyLength: 0xffffffff }), 'bad-length', /arrived/);
  // A bodiless type announcing a body, even one that is there.
  for (const [code, m] of [[1, ANNOUNCE], [4, ACK], [5, PRESENCE]] as const) {
    expectReject(rawFrame({ code, header: json(m), body: new Uint8Array(4) }), 'bad-length', new RegExp(`a ${m.type} message carries no body, this one announces 4 bytes`));
  }
});

test('headers that are not a JSON object, or name their own type', () => {
  expectReject(rawFrame({ header: '{"agent":' }), 'bad-header', /presence header is not JSON/);
  expectReject(rawFrame({ header: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }), 'bad-header', /not JSON/);
  expectReject(rawFrame({ header: 'null' }), 'bad-header', /must be a JSON object without a type field/);
  expectReject(rawFrame({ header: '[1,2]' }), 'bad-header', /must be a JSON object/);
  expectReject(rawFrame({ header: '"presence"' }), 'bad-header', /must be a JSON object/);
  expectReject(rawFrame({ header: '42' }), 'bad-header', /must be a JSON object/);
  // A `type` field, even one that agrees with the code, is refused: the code is the one source.
  expectReject(rawFrame({ header: JSON.stringify({ ...headerFields(PRESENCE), type: 'presence' }) }), 'bad-header', /without a type field/);
  expectReject(rawFrame({ code: 4, header: JSON.stringify({ ...headerFields(ACK), type: 'announce' }) }), 'bad-header', /ack header/);
});

test('schema violations: unknown field, bad ids, negative round, wrong phase', () => {
  const bad = (code: number, m: Message, patch: Record<string, unknown>, path: RegExp) => {
    const header = JSON.stringify({ ...headerFields(m), ...patch });
    const body = 'body' in m ? m.body : undefined;
    const err = expectReject(rawFrame({ code, header, ...(body ? { body } : {}) }), 'bad-header', path);
    assert.is(err.details?.type, m.type);
  };
  bad(5, PRESENCE, { colour: 'red' }, /presence\.\(root\): Unrecognized key/);
  bad(2, UPDATE, { body: 'AAAA' }, /Unrecognized key/); // the body travels after the header, never in it
  for (const id of ['a/b', 'a+b', 'a#', '#', '+', 'a b', '', 'x'.repeat(65)]) {
    bad(5, PRESENCE, { agent: id }, /^presence\.agent: ids are 1–64 of/);
    bad(1, ANNOUNCE, { federation: id }, /^announce\.federation: ids are/);
  }
  bad(2, UPDATE, { round: -1 }, /update\.round/);
  bad(2, UPDATE, { round: 0 }, /update\.round/);
  bad(2, UPDATE, { round: 1.5 }, /update\.round/);
  bad(2, UPDATE, { phase: 'final' }, /update\.phase/);
  bad(2, UPDATE, { samples: 0 }, /update\.samples/);
  bad(4, ACK, { loss: -0.5 }, /ack\.loss/);
  bad(4, ACK, { loss: 'NaN' }, /ack\.loss/);
  bad(1, ANNOUNCE, { configHash: 'ABC' }, /announce\.configHash/);
  bad(1, ANNOUNCE, { model: { ...ANNOUNCE.model, extra: 1 } }, /announce\.model/);
  bad(3, GLOBAL, { selection: { bestRound: 1, ridgeLambdas: [0] } }, /global\.selection\.ridgeLambdas\.0/);
  bad(5, PRESENCE, { state: 'asleep' }, /presence\.state/);
  const { at: _at, ...noTime } = headerFields(PRESENCE);
  expectReject(rawFrame({ header: JSON.stringify(noTime) }), 'bad-header', /presence\.at: Required/);
});

test('`accept` refuses other types before their header is parsed', () => {
  const only = new Set<MessageType>(['update', 'ack', 'presence']);
  // A garbage header and non-zero reserved bytes: refused for its type, not for what follows.
  const err = expectReject(rawFrame({ code: 1, header: '{{{', reserved: [1, 1] }), 'type-not-accepted', /announce message is not taken here/, only);
  assert.is(err.details?.type, 'announce');
  expectReject(encodeMessage(GLOBAL), 'type-not-accepted', /a global message/, only);
  assert.equal(decodeMessage(encodeMessage(ACK), only), ACK);
  // The frame checks before the type check still run first.
  expectReject(rawFrame({ version: 3, code: 1 }), 'unknown-version', /version 3/, only);
});

test('encodeMessage refuses what a peer would drop (TypeError / RangeError)', () => {
  const refuses = (m: unknown, pattern: RegExp, kind: ErrorConstructor = TypeError) => {
    assert.throws(() => encodeMessage(m as Message), (e: unknown) => e instanceof kind && pattern.test((e as Error).message), String(pattern));
  };
  const { body: _body, ...noBody } = UPDATE;
  refuses(noBody, /a update message needs body/);
  refuses({ ...GLOBAL, body: [1, 2, 3] }, /a global message needs body/);
  refuses({ ...PRESENCE, body: new Uint8Array(1) }, /a presence message takes no body/);
  refuses({ ...PRESENCE, agent: 'a/b' }, /^encodeMessage: presence\.agent: ids are/);
  refuses({ ...UPDATE, phase: 'final' }, /update\.phase/);
  refuses({ ...ANNOUNCE, round: -1 }, /announce\.round/);
  refuses({ ...PRESENCE, extra: true }, /presence\.: Unrecognized key/);
  // Numbers JSON cannot carry: Infinity would arrive as null ("no report"), so it must go as 'Infinity'.
  refuses({ ...ACK, loss: Infinity }, /ack\.loss/);
  refuses({ ...ACK, loss: NaN }, /ack\.loss/);
  refuses({ ...ACK, ridgeLosses: [[Infinity]] }, /ack\.ridgeLosses\.0\.0/);
  refuses({ ...GLOBAL, selection: { bestRound: 1, ridgeLambdas: [Infinity] } }, /global\.selection\.ridgeLambdas\.0/);
  refuses({ ...PRESENCE, reason: 'x'.repeat(70_000) }, /presence\.reason/);
  refuses({ ...ANNOUNCE, keyId: 'k'.repeat(65) }, /announce\.keyId/);
});

test('a header over MAX_HEADER_BYTES is refused on the way out (RangeError), though its schema allows it', () => {
  // 64 heads × 64 penalties of 17-digit losses: valid by the ack schema, 73 KB of JSON.
  const ridgeLosses = Array.from({ length: 64 }, () => Array.from({ length: 64 }, () => 0.12345678901234568));
  assert.throws(
    () => encodeMessage({ ...ACK, ridgeLosses }),
    (e: unknown) => e instanceof RangeError && /ack header is \d+ bytes, over 65536/.test((e as Error).message),
  );
});

test.run();
