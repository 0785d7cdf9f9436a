import { createHash } from 'node:crypto';
import { PROTOCOL_VERSION, type MessageType } from './messages.js';
import { TYPE_CODES, peekType, protocolError, typeOfCode, type RejectReason } from './frame.js';

/**
 * Chunks: what actually goes into one MQTT payload. Every message (frame.ts) travels as one or
 * more chunks, so brokers' packet limits never bite (EMQX refuses packets over 1 MB by default,
 * Mosquitto 2.1 over 2,000,000 bytes, and neither tells a 3.1.1 client why: it is just
 * disconnected). Little-endian:
 *
 *   off  size  field
 *     0     4  magic 'ICFC'
 *     4     1  protocol version (1)
 *     5     1  type of the message carried (frame.ts codes), so a receiver drops types it never
 *              takes before it buffers anything
 *     6     2  reserved, 0
 *     8     4  chunk index i, 0 … n−1
 *    12     4  chunk count n, 1 … MAX_CHUNKS
 *    16     4  message length L
 *    20    32  SHA-256 of the whole message: the set's identity and its integrity check
 *    52     …  message bytes [i·S, min(L, (i+1)·S)), S = ceil(L / n)
 *
 * ChunkAssembler checks each chunk against its limits before it allocates the set's buffer,
 * frees incomplete sets after a timeout, refuses a set whose hash does not match, and reports
 * chunks of a message it completed recently as duplicates (QoS 1 redelivers).
 */
export const CHUNK_MAGIC = 0x43464349; // 'ICFC' read as little-endian uint32
export const CHUNK_HEADER_BYTES = 52;
/** Default payload size (header included): a quarter of EMQX's 1 MB default limit. */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;
export const MIN_CHUNK_BYTES = CHUNK_HEADER_BYTES + 64;
export const MAX_CHUNKS = 65_536;

/** Largest message each type may be, by default: the receiver's limits (AssemblerOptions.maxMessageBytes). */
export const DEFAULT_MAX_MESSAGE_BYTES: Readonly<Record<MessageType, number>> = {
  announce: 64 * 1024,
  ack: 64 * 1024,
  presence: 8 * 1024,
  // An 11-metric ridge update is 2.7 MB; a model update of the default layout 25 KB.
  update: 64 * 1024 * 1024,
  // An aggregate carries every agent's 64-byte seed per ciphertext (wire.ts).
  global: 256 * 1024 * 1024,
  // A shard's sum (kind 3 past 376 agents: two polynomials per ciphertext) and its agent list.
  partial: 256 * 1024 * 1024,
};

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Splits one encoded message into chunks of at most `chunkBytes` each (header included). */
export function splitMessage(message: Uint8Array, chunkBytes = DEFAULT_CHUNK_BYTES): Uint8Array[] {
  if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_CHUNK_BYTES) throw new RangeError(`chunkBytes must be an integer ≥ ${MIN_CHUNK_BYTES}, got ${chunkBytes}`);
  const type = peekType(message);
  if (!type) throw new TypeError('splitMessage: not an encoded message (frame.ts)');
  const L = message.length;
  const n = Math.max(1, Math.ceil(L / (chunkBytes - CHUNK_HEADER_BYTES)));
  if (n > MAX_CHUNKS) throw new RangeError(`a ${L}-byte message needs ${n} chunks of ${chunkBytes} bytes, over ${MAX_CHUNKS}`);
  const S = Math.ceil(L / n);
  const hash = sha256(message);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const part = message.subarray(i * S, Math.min(L, (i + 1) * S));
    const chunk = new Uint8Array(CHUNK_HEADER_BYTES + part.length);
    const v = new DataView(chunk.buffer);
    v.setUint32(0, CHUNK_MAGIC, true);
    v.setUint8(4, PROTOCOL_VERSION);
    v.setUint8(5, TYPE_CODES[type]);
    v.setUint16(6, 0, true);
    v.setUint32(8, i, true);
    v.setUint32(12, n, true);
    v.setUint32(16, L, true);
    chunk.set(hash, 20);
    chunk.set(part, CHUNK_HEADER_BYTES);
    out.push(chunk);
  }
  return out;
}

export interface ChunkHeader {
  type: MessageType;
  index: number;
  count: number;
  length: number;
  hash: string;
  data: Uint8Array;
}

/** Parses a chunk's header and checks it is self-consistent (not yet against any limit). */
export function parseChunk(bytes: Uint8Array): ChunkHeader {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('parseChunk: expected a Uint8Array');
  if (bytes.length < CHUNK_HEADER_BYTES) throw protocolError('truncated', `chunk of ${bytes.length} bytes is shorter than its ${CHUNK_HEADER_BYTES}-byte header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== CHUNK_MAGIC) throw protocolError('bad-magic', 'not an icosfl chunk (bad magic)');
  const version = v.getUint8(4);
  if (version !== PROTOCOL_VERSION) throw protocolError('unknown-version', `protocol version ${version}; this build speaks ${PROTOCOL_VERSION}`, { version });
  const type = typeOfCode(v.getUint8(5));
  if (!type) throw protocolError('unknown-type', `unknown message type ${v.getUint8(5)}`);
  if (v.getUint16(6, true) !== 0) throw protocolError('reserved-nonzero', 'reserved chunk header bytes are not zero');
  const index = v.getUint32(8, true);
  const count = v.getUint32(12, true);
  const length = v.getUint32(16, true);
  const S = Math.ceil(length / count);
  // (count − 1)·S ≥ length: the set's last chunk would be empty, so the set could never complete.
  if (count < 1 || count > MAX_CHUNKS || index >= count || length < count || (count - 1) * S >= length) {
    throw protocolError('bad-chunk', `chunk ${index} of ${count} for a ${length}-byte message is impossible`, { index, count, length });
  }
  const expected = Math.min(length, (index + 1) * S) - index * S;
  const data = bytes.subarray(CHUNK_HEADER_BYTES);
  if (expected < 1 || data.length !== expected) {
    throw protocolError('bad-chunk', `chunk ${index} of ${count} carries ${data.length} bytes, ${Math.max(expected, 0)} expected`, { index, count, length });
  }
  return { type, index, count, length, hash: hex(bytes.subarray(20, 52)), data };
}

export interface AssemblerOptions {
  /** Types this receiver takes; chunks of others are refused unbuffered. */
  accept: ReadonlySet<MessageType>;
  maxMessageBytes?: Partial<Record<MessageType, number>>;
  /** Bytes all incomplete sets may hold together (default 512 MiB). */
  maxPendingBytes?: number;
  /** An incomplete set is freed this long after its first chunk (default 120 s). */
  timeoutMs?: number;
  /** Completed message hashes remembered per stream to spot redeliveries (default 64). */
  recentPerStream?: number;
  /** What one sender may start until resetBudgets() (the coordinator: per agent and round); none by default. */
  senderBudget?: SenderBudget;
}

/**
 * One sender's allowance (issue 21), charged when a chunk would start a new set, before its
 * buffer is allocated: `maxBytes` of declared message lengths over every type, and `maxSets`
 * sets of the `countedTypes` (presence, sent every 30 s whether or not a round runs, is
 * charged bytes only). Chunks of a set already started and redeliveries cost nothing.
 */
export interface SenderBudget {
  maxBytes: number;
  maxSets: number;
  countedTypes: ReadonlySet<MessageType>;
}

export type AssembleResult =
  | { kind: 'complete'; type: MessageType; message: Uint8Array; hash: string }
  | { kind: 'partial'; received: number; count: number }
  | { kind: 'duplicate'; hash: string }
  | { kind: 'rejected'; reason: RejectReason; detail: string };

interface PendingSet {
  type: MessageType;
  count: number;
  length: number;
  buffer: Uint8Array;
  have: Uint8Array; // one byte per chunk: 1 once received
  received: number;
  startedAt: number;
}

/**
 * Reassembles chunk sets per stream (the topic a sender publishes on; all `global/<i>` chunk
 * topics are one stream, topics.ts streamOf). Pure apart from its own buffers: the caller passes
 * the clock in, so tests need no timers.
 */
export class ChunkAssembler {
  readonly #accept: ReadonlySet<MessageType>;
  readonly #limits: Record<MessageType, number>;
  readonly #maxPending: number;
  readonly #timeoutMs: number;
  readonly #recentPerStream: number;
  readonly #pending = new Map<string, PendingSet>();
  readonly #recent = new Map<string, string[]>();
  readonly #budget: SenderBudget | undefined;
  readonly #spent = new Map<string, { bytes: number; sets: number }>();
  #pendingBytes = 0;

  constructor(opts: AssemblerOptions) {
    this.#accept = opts.accept;
    this.#limits = { ...DEFAULT_MAX_MESSAGE_BYTES, ...opts.maxMessageBytes };
    this.#maxPending = opts.maxPendingBytes ?? 512 * 1024 * 1024;
    this.#timeoutMs = opts.timeoutMs ?? 120_000;
    this.#recentPerStream = opts.recentPerStream ?? 64;
    this.#budget = opts.senderBudget;
  }

  /** Bytes held by incomplete sets. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get pendingSets(): number {
    return this.#pending.size;
  }

  /** `sender` is whom senderBudget charges (default: the stream). */
  accept(stream: string, bytes: Uint8Array, now: number, sender = stream): AssembleResult {
    let c: ChunkHeader;
    try {
      c = parseChunk(bytes);
    } catch (err) {
      const e = err as Error & { details?: { reason?: RejectReason } };
      if (!e.details?.reason) throw err;
      return { kind: 'rejected', reason: e.details.reason, detail: e.message };
    }
    if (!this.#accept.has(c.type)) return { kind: 'rejected', reason: 'type-not-accepted', detail: `a ${c.type} message is not taken here` };
    if (c.length > this.#limits[c.type]) {
      return { kind: 'rejected', reason: 'oversized', detail: `a ${c.length}-byte ${c.type} message is over the ${this.#limits[c.type]}-byte limit` };
    }
    if (this.#recent.get(stream)?.includes(c.hash)) return { kind: 'duplicate', hash: c.hash };
    const key = `${stream}\n${c.hash}`;
    let set = this.#pending.get(key);
    if (set && (set.count !== c.count || set.length !== c.length || set.type !== c.type)) {
      return { kind: 'rejected', reason: 'inconsistent-chunk', detail: `chunk ${c.index} disagrees with its set (${c.count} chunks, ${c.length} bytes)` };
    }
    if (!set) {
      const overBudget = this.#charge(sender, c.type, c.length);
      if (overBudget) return { kind: 'rejected', reason: 'rate-limited', detail: overBudget };
      if (c.count === 1) return this.#complete(stream, c.type, c.hash, c.data);
      if (this.#pendingBytes + c.length > this.#maxPending) {
        return { kind: 'rejected', reason: 'too-many-pending', detail: `${this.#pendingBytes} bytes already wait for their other chunks; a ${c.length}-byte set would pass ${this.#maxPending}` };
      }
      set = { type: c.type, count: c.count, length: c.length, buffer: new Uint8Array(c.length), have: new Uint8Array(c.count), received: 0, startedAt: now };
      this.#pending.set(key, set);
      this.#pendingBytes += c.length;
    }
    if (set.have[c.index]) return { kind: 'partial', received: set.received, count: set.count };
    set.buffer.set(c.data, c.index * Math.ceil(c.length / c.count));
    set.have[c.index] = 1;
    set.received++;
    if (set.received < set.count) return { kind: 'partial', received: set.received, count: set.count };
    this.#pending.delete(key);
    this.#pendingBytes -= set.length;
    return this.#complete(stream, set.type, c.hash, set.buffer);
  }

  /** Charges a new set to its sender; the reason it is over budget (nothing charged then), or undefined. */
  #charge(sender: string, type: MessageType, length: number): string | undefined {
    const budget = this.#budget;
    if (!budget) return undefined;
    const spent = this.#spent.get(sender) ?? { bytes: 0, sets: 0 };
    const counted = budget.countedTypes.has(type) ? 1 : 0;
    if (spent.bytes + length > budget.maxBytes) return `${sender} already sent ${spent.bytes} bytes this round; a ${length}-byte ${type} would pass ${budget.maxBytes}`;
    if (spent.sets + counted > budget.maxSets) return `${sender} already sent ${spent.sets} messages this round, the most it may`;
    spent.bytes += length;
    spent.sets += counted;
    this.#spent.set(sender, spent);
    return undefined;
  }

  /** Starts every sender's allowance afresh (the coordinator: when it announces a new round). */
  resetBudgets(): void {
    this.#spent.clear();
  }

  #complete(stream: string, type: MessageType, hash: string, message: Uint8Array): AssembleResult {
    if (hex(sha256(message)) !== hash) return { kind: 'rejected', reason: 'hash-mismatch', detail: 'the reassembled message does not match its SHA-256' };
    const recent = this.#recent.get(stream) ?? [];
    recent.push(hash);
    if (recent.length > this.#recentPerStream) recent.shift();
    this.#recent.set(stream, recent);
    return { kind: 'complete', type, message, hash };
  }

  /** Frees the sets older than the timeout; returns what was dropped, for the log. */
  expire(now: number): { stream: string; hash: string; type: MessageType; received: number; count: number }[] {
    const dropped: { stream: string; hash: string; type: MessageType; received: number; count: number }[] = [];
    for (const [key, set] of this.#pending) {
      if (now - set.startedAt < this.#timeoutMs) continue;
      this.#pending.delete(key);
      this.#pendingBytes -= set.length;
      // The hash (hex) has no newline; a stream (a topic) may.
      const cut = key.lastIndexOf('\n');
      const stream = key.slice(0, cut);
      const hash = key.slice(cut + 1);
      dropped.push({ stream, hash, type: set.type, received: set.received, count: set.count });
    }
    return dropped;
  }

  /** Forgets a stream's redelivery memory (e.g. after a reconnect, when retained copies are wanted again). */
  forget(stream: string): void {
    this.#recent.delete(stream);
  }
}
