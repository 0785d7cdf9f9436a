import { IcosflError } from '../errors.js';
import { MESSAGE_SCHEMAS, MESSAGE_TYPES, PROTOCOL_VERSION, WITH_BODY, type Message, type MessageType } from './messages.js';
import { ID_PATTERN } from './messages.js';
import { NONCE_BYTES, SIGNATURE_BYTES, type SignatureBlock, type SignatureRejectReason } from './signature.js';

/**
 * One federation message as bytes (little-endian), before chunking (chunks.ts):
 *
 *   off  size  field
 *     0     4  magic 'ICFM'
 *     4     1  protocol version (1)
 *     5     1  type: 1 announce, 2 update, 3 global, 4 ack, 5 presence, 6 partial
 *     6     1  flags: bit 0 = a signature block follows the body; other bits 0
 *     7     1  reserved, 0
 *     8     4  header length H: UTF-8 JSON of the message's fields but `type` and `body`, 2 … MAX_HEADER_BYTES
 *              (a partial's, which lists up to 65,536 agents: 2 … MAX_PARTIAL_HEADER_BYTES)
 *    12     4  body length B: 0 for announce, ack and presence
 *    16     H  header JSON
 *  16+H     B  body: a CKKS frame (common/crypto/wire.ts) or plaintext float32 LE
 *
 * The signature block (flag bit 0; signature.ts says what is signed: the bytes 0 … 16+H+B−1
 * above, hashed, with the message's routing fields):
 *
 *     0     1  signer id length S, 1 … 64
 *     1     S  signer id (an agent id, or "coordinator")
 *   1+S    16  nonce
 *  17+S     8  expiry, ms since the epoch, float64 (an integer)
 *  25+S    64  Ed25519 signature
 *
 * decodeMessage checks every field, the total length and the header against its strict schema
 * (messages.ts) before anything else reads it; a failure is PROTOCOL_MALFORMED with a stable
 * `details.reason`, which receivers log and count, then drop the message.
 */
export const MESSAGE_MAGIC = 0x4d464349; // 'ICFM' read as little-endian uint32
export const MESSAGE_HEADER_BYTES = 16;
export const MAX_HEADER_BYTES = 64 * 1024;
export const MAX_PARTIAL_HEADER_BYTES = 16 * 1024 * 1024;
const maxHeaderBytes = (type: MessageType) => (type === 'partial' ? MAX_PARTIAL_HEADER_BYTES : MAX_HEADER_BYTES);

export const TYPE_CODES: Readonly<Record<MessageType, number>> = { announce: 1, update: 2, global: 3, ack: 4, presence: 5, partial: 6 };
const TYPE_BY_CODE = new Map(Object.entries(TYPE_CODES).map(([t, c]) => [c, t as MessageType]));

export function typeOfCode(code: number): MessageType | undefined {
  return TYPE_BY_CODE.get(code);
}

/** Stable reasons a message or chunk is refused (logs and the coordinator's rejection counters use them). */
export type RejectReason =
  | 'truncated'
  | 'bad-magic'
  | 'unknown-version'
  | 'unknown-type'
  | 'reserved-nonzero'
  | 'bad-length'
  | 'oversized'
  | 'bad-header'
  | 'bad-chunk'
  | 'inconsistent-chunk'
  | 'hash-mismatch'
  | 'too-many-pending'
  | 'rate-limited'
  | 'incomplete'
  | 'type-not-accepted'
  | 'wrong-federation'
  | 'wrong-topic'
  | 'agent-mismatch'
  | SignatureRejectReason;

export function protocolError(reason: RejectReason, message: string, details: Record<string, unknown> = {}): IcosflError {
  return new IcosflError('PROTOCOL_MALFORMED', message, { details: { reason, ...details } });
}

/** The reason of a PROTOCOL_MALFORMED error (undefined for anything else). */
export function rejectReason(err: unknown): RejectReason | undefined {
  if (err instanceof IcosflError && err.code === 'PROTOCOL_MALFORMED') return err.details?.reason as RejectReason | undefined;
  return undefined;
}

export const FLAG_SIGNED = 1;
const blockBytes = (signer: string) => 1 + signer.length + NONCE_BYTES + 8 + SIGNATURE_BYTES;

/**
 * Encodes a message; with `sign`, also its signature block (sign gets the frame as signed, with
 * the signed flag already set, and returns the block).
 */
export function encodeMessage(message: Message, sign?: (frame: Uint8Array) => SignatureBlock): Uint8Array {
  const { type, ...rest } = message as Message & { body?: Uint8Array };
  const body = 'body' in rest ? rest.body : undefined;
  if (WITH_BODY.has(type) !== (body instanceof Uint8Array)) {
    throw new TypeError(`encodeMessage: a ${type} message ${WITH_BODY.has(type) ? 'needs' : 'takes no'} body`);
  }
  const fields: Record<string, unknown> = { ...rest };
  delete fields.body;
  // Validated on the way out too: a bug must not put a message on the wire that peers drop.
  const checked = MESSAGE_SCHEMAS[type].safeParse({ type, ...fields });
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new TypeError(`encodeMessage: ${type}.${issue.path.join('.')}: ${issue.message}`);
  }
  const header = Buffer.from(JSON.stringify(fields), 'utf8');
  if (header.length > maxHeaderBytes(type)) throw new RangeError(`encodeMessage: ${type} header is ${header.length} bytes, over ${maxHeaderBytes(type)}`);
  const bodyLength = body?.length ?? 0;
  const signedLength = MESSAGE_HEADER_BYTES + header.length + bodyLength;
  const frame = new Uint8Array(signedLength);
  const v = new DataView(frame.buffer);
  v.setUint32(0, MESSAGE_MAGIC, true);
  v.setUint8(4, PROTOCOL_VERSION);
  v.setUint8(5, TYPE_CODES[type]);
  v.setUint8(6, sign ? FLAG_SIGNED : 0);
  v.setUint8(7, 0);
  v.setUint32(8, header.length, true);
  v.setUint32(12, bodyLength, true);
  frame.set(header, MESSAGE_HEADER_BYTES);
  if (body) frame.set(body, MESSAGE_HEADER_BYTES + header.length);
  if (!sign) return frame;
  const block = sign(frame);
  if (!ID_PATTERN.test(block.signer) || block.nonce.length !== NONCE_BYTES || block.signature.length !== SIGNATURE_BYTES || !Number.isSafeInteger(block.expiry)) {
    throw new TypeError('encodeMessage: malformed signature block');
  }
  const out = new Uint8Array(signedLength + blockBytes(block.signer));
  out.set(frame);
  const bv = new DataView(out.buffer, signedLength);
  bv.setUint8(0, block.signer.length);
  out.set(Buffer.from(block.signer, 'ascii'), signedLength + 1);
  let at = signedLength + 1 + block.signer.length;
  out.set(block.nonce, at);
  at += NONCE_BYTES;
  new DataView(out.buffer).setFloat64(at, block.expiry, true);
  out.set(block.signature, at + 8);
  return out;
}

/** A decoded frame: the message, its signature block if any, and the bytes the signature covers. */
export interface DecodedFrame {
  message: Message;
  signature: SignatureBlock | undefined;
  signed: Uint8Array;
}

/**
 * Parses and validates one message (the body is copied, aligned). `accept` lists
 * the types this receiver takes: anything else is refused before its header is parsed.
 */
export function decodeMessage(bytes: Uint8Array, accept?: ReadonlySet<MessageType>): Message {
  return decodeFrame(bytes, accept).message;
}

/** decodeMessage, also returning the signature block (not verified here: signature.ts). */
export function decodeFrame(bytes: Uint8Array, accept?: ReadonlySet<MessageType>): DecodedFrame {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decodeMessage: expected a Uint8Array');
  if (bytes.length < MESSAGE_HEADER_BYTES) throw protocolError('truncated', `message of ${bytes.length} bytes is shorter than its ${MESSAGE_HEADER_BYTES}-byte header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== MESSAGE_MAGIC) throw protocolError('bad-magic', 'not an icosfl message (bad magic)');
  const version = v.getUint8(4);
  if (version !== PROTOCOL_VERSION) throw protocolError('unknown-version', `protocol version ${version}; this build speaks ${PROTOCOL_VERSION}`, { version });
  const type = typeOfCode(v.getUint8(5));
  if (!type) throw protocolError('unknown-type', `unknown message type ${v.getUint8(5)}`);
  if (accept && !accept.has(type)) throw protocolError('type-not-accepted', `a ${type} message is not taken here`, { type });
  const flags = v.getUint8(6);
  if ((flags & ~FLAG_SIGNED) !== 0 || v.getUint8(7) !== 0) throw protocolError('reserved-nonzero', 'reserved header bits are not zero');
  const headerLength = v.getUint32(8, true);
  const bodyLength = v.getUint32(12, true);
  if (headerLength < 2 || headerLength > maxHeaderBytes(type)) throw protocolError('bad-length', `header length ${headerLength} is outside 2…${maxHeaderBytes(type)}`);
  if (!WITH_BODY.has(type) && bodyLength !== 0) throw protocolError('bad-length', `a ${type} message carries no body, this one announces ${bodyLength} bytes`);
  const signedLength = MESSAGE_HEADER_BYTES + headerLength + bodyLength;
  let signature: SignatureBlock | undefined;
  if (flags & FLAG_SIGNED) {
    const s = signedLength < bytes.length ? bytes[signedLength]! : 0;
    if (s < 1 || s > 64 || signedLength + blockBytes('x'.repeat(s)) !== bytes.length) {
      throw protocolError('bad-length', `the frame announces ${signedLength} bytes and a signature block, ${bytes.length} arrived`, { length: bytes.length });
    }
    const signer = Buffer.from(bytes.buffer, bytes.byteOffset + signedLength + 1, s).toString('latin1');
    if (!ID_PATTERN.test(signer)) throw protocolError('bad-header', 'the signature block names no valid signer id');
    let at = signedLength + 1 + s;
    const nonce = bytes.slice(at, at + NONCE_BYTES);
    at += NONCE_BYTES;
    const expiry = v.getFloat64(at, true);
    if (!Number.isSafeInteger(expiry) || expiry < 0) throw protocolError('bad-header', 'the signature block has no valid expiry');
    signature = { signer, nonce, expiry, signature: bytes.slice(at + 8, at + 8 + SIGNATURE_BYTES) };
  } else if (signedLength !== bytes.length) {
    throw protocolError('bad-length', `the frame announces ${signedLength} bytes, ${bytes.length} arrived`, { length: bytes.length });
  }
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + MESSAGE_HEADER_BYTES, headerLength).toString('utf8'));
  } catch {
    throw protocolError('bad-header', `${type} header is not JSON`);
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields) || 'type' in fields) {
    throw protocolError('bad-header', `${type} header must be a JSON object without a type field`);
  }
  const parsed = MESSAGE_SCHEMAS[type].safeParse({ type, ...fields });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw protocolError('bad-header', `${type}.${issue.path.join('.') || '(root)'}: ${issue.message}`, { type });
  }
  const message = parsed.data as Message;
  if (WITH_BODY.has(type)) {
    const start = MESSAGE_HEADER_BYTES + headerLength;
    // A copy, not a view: the body starts after a header of any length, and the crypto code reads
    // it through typed arrays that must be 4- and 8-byte aligned (and a Buffer's slice() is a view).
    const body = new Uint8Array(bodyLength);
    body.set(bytes.subarray(start, start + bodyLength));
    (message as Message & { body: Uint8Array }).body = body;
  }
  return { message, signature, signed: bytes.subarray(0, signedLength) };
}

/** The message type a frame announces, without parsing it; undefined when it is not a frame. */
export function peekType(bytes: Uint8Array): MessageType | undefined {
  if (bytes.length < MESSAGE_HEADER_BYTES) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return v.getUint32(0, true) === MESSAGE_MAGIC ? typeOfCode(v.getUint8(5)) : undefined;
}

export { MESSAGE_TYPES };
