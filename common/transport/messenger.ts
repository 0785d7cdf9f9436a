import type { Logger } from '../log.js';
import { ChunkAssembler, DEFAULT_CHUNK_BYTES, splitMessage, type AssemblerOptions } from '../protocol/chunks.js';
import { decodeFrame, encodeMessage, rejectReason, type RejectReason } from '../protocol/frame.js';
import { MESSAGE_LIFETIME_MS, NonceCache, signBlock, verifyBlock, type Signer, type SignerKey } from '../protocol/signature.js';
import type { Global, Message, MessageType } from '../protocol/messages.js';
import { federationTopics, parseTopic, routeMismatch, streamOf, type FederationTopics } from '../protocol/topics.js';
import type { InboundMessage, Transport } from './transport.js';

/**
 * Messages over a transport, the same on both ends: encode (protocol/frame.ts), split into
 * chunks (protocol/chunks.ts) and publish on the message's topic (protocol/topics.ts); on the
 * way in, reassemble, decode, check the route, and hand the message to the one handler. A
 * message that can never be processed (malformed, oversized, unknown version, another
 * federation, sent as someone else) is logged with its reason, counted and dropped; the
 * transport acknowledges it all the same, so it is never redelivered forever.
 */
export interface MessengerOptions {
  transport: Transport;
  federation: string;
  /** Message types this end takes (the coordinator: update, ack, presence; agents: announce, global). */
  accept: ReadonlySet<MessageType>;
  logger: Logger;
  chunkBytes?: number;
  assembler?: Omit<AssemblerOptions, 'accept' | 'senderBudget'>;
  /**
   * Per-agent limits per round (issue 21), enforced before reassembly allocates: declared bytes
   * of everything an agent sends, and update and ack messages. A round starts when this end
   * sends an announcement of a new round id. None by default (agents take only the coordinator's).
   */
  agentBudget?: { maxBytes: number; maxMessages: number };
  now?: () => number;
  /** Where rejections go (a 'security' child logger, stable field `event`); default: logger. */
  securityLogger?: Logger;
  /** Signs everything this end sends (common/protocol/signature.ts). */
  signer?: Signer;
  /**
   * Requires a valid signature on everything that arrives, by the key this returns for the
   * sender; without it signature blocks are ignored (a federation run without signing keys).
   */
  keyOf?: (signer: string) => SignerKey;
}

/** Encodes a message, signed when a signer is given (also for the presence will, sent by the broker). */
export function encodeForWire(message: Message, signer: Signer | undefined, now: number): Uint8Array {
  return encodeMessage(message, signer ? (frame) => signBlock(message, frame, signer, now) : undefined);
}

export interface InboundContext {
  topic: string;
  retained: boolean;
  /** SHA-256 (hex) of the message's bytes. */
  hash: string;
  bytes: number;
}

export type InboundHandler = (message: Message, ctx: InboundContext) => Promise<void> | void;

export interface MessengerStats {
  received: Record<string, number>;
  sent: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
  rejected: Partial<Record<RejectReason, number>>;
  duplicates: number;
  expiredSets: number;
  pendingBytes: number;
}

export class Messenger {
  readonly topics: FederationTopics;
  readonly #opts: MessengerOptions;
  readonly #assembler: ChunkAssembler;
  readonly #now: () => number;
  readonly #chunkBytes: number;
  readonly #stats: MessengerStats = { received: {}, sent: {}, bytesIn: 0, bytesOut: 0, rejected: {}, duplicates: 0, expiredSets: 0, pendingBytes: 0 };
  #handler: InboundHandler | undefined;
  #expiry: NodeJS.Timeout | undefined;
  readonly #nonces = new NonceCache();
  /** Signed bytes of messages sent, so a resend of the same message is the same bytes (QoS 1 dedup, one nonce). */
  readonly #wire = new WeakMap<Message, { bytes: Uint8Array; expiry: number }>();
  #announcedRound: number | undefined;

  constructor(opts: MessengerOptions) {
    this.#opts = opts;
    this.topics = federationTopics(opts.federation);
    this.#now = opts.now ?? Date.now;
    this.#chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const budget = opts.agentBudget;
    this.#assembler = new ChunkAssembler({
      ...opts.assembler,
      accept: opts.accept,
      ...(budget ? { senderBudget: { maxBytes: budget.maxBytes, maxSets: budget.maxMessages, countedTypes: new Set<MessageType>(['update', 'ack']) } } : {}),
    });
    opts.transport.onMessage((m) => this.#inbound(m));
    // Incomplete chunk sets are freed on a timer so a sender that vanished mid-message costs nothing.
    const every = Math.max(1000, Math.floor((opts.assembler?.timeoutMs ?? 120_000) / 4));
    this.#expiry = setInterval(() => this.expire(), every);
    this.#expiry.unref();
  }

  onMessage(handler: InboundHandler): void {
    this.#handler = handler;
  }

  /** Frees incomplete chunk sets past their timeout (also done on a timer); returns how many. */
  expire(): number {
    const dropped = this.#assembler.expire(this.#now());
    for (const d of dropped) this.#opts.logger.warn({ stream: d.stream, type: d.type, received: d.received, chunks: d.count, reason: 'incomplete' }, 'incomplete message dropped');
    this.#stats.expiredSets += dropped.length;
    this.#count('incomplete', dropped.length);
    return dropped.length;
  }

  stats(): MessengerStats {
    return { ...this.#stats, received: { ...this.#stats.received }, sent: { ...this.#stats.sent }, rejected: { ...this.#stats.rejected }, pendingBytes: this.#assembler.pendingBytes };
  }

  #count(reason: RejectReason, n = 1): void {
    if (n > 0) this.#stats.rejected[reason] = (this.#stats.rejected[reason] ?? 0) + n;
  }

  #reject(reason: RejectReason, detail: string, topic: string): void {
    this.#count(reason);
    (this.#opts.securityLogger ?? this.#opts.logger).warn({ event: 'message-rejected', topic, reason, detail }, 'message rejected');
  }

  /** Every agent's per-round allowance starts afresh (also done when this end announces a new round). */
  resetAgentBudgets(): void {
    this.#assembler.resetBudgets();
  }

  async #inbound(m: InboundMessage): Promise<void> {
    this.#stats.bytesIn += m.payload.length;
    // An empty retained payload is a deletion (stale global chunks), not a message.
    if (m.payload.length === 0) return;
    const stream = streamOf(m.topic);
    // An agent's update, ack and presence topics share its allowance; other topics are their own sender.
    const sender = parseTopic(m.topic)?.agent ?? stream;
    const r = this.#assembler.accept(stream, m.payload, this.#now(), sender);
    if (r.kind === 'rejected') return this.#reject(r.reason, r.detail, m.topic);
    if (r.kind === 'duplicate') {
      this.#stats.duplicates++;
      return;
    }
    if (r.kind === 'partial') return;
    let message: Message;
    try {
      const frame = decodeFrame(r.message, this.#opts.accept);
      message = frame.message;
      // The route first (cheap, and the more telling reason), then the signature.
      const mismatch = routeMismatch(m.topic, message, this.#opts.federation);
      if (mismatch) return this.#reject(mismatch, `${message.type} from ${'agent' in message ? message.agent : 'the coordinator'} of federation ${message.federation} on ${m.topic}`, m.topic);
      const keyOf = this.#opts.keyOf;
      if (keyOf) verifyBlock(message, frame.signed, frame.signature, { keyOf, now: this.#now(), replay: this.#nonces });
    } catch (err) {
      const reason = rejectReason(err);
      if (!reason) throw err;
      return this.#reject(reason, (err as Error).message, m.topic);
    }
    this.#stats.received[message.type] = (this.#stats.received[message.type] ?? 0) + 1;
    await this.#handler?.(message, { topic: m.topic, retained: m.retained, hash: r.hash, bytes: r.message.length });
  }

  /** Publishes a message on its topic (announce retained; use sendGlobal for globals). */
  async send(message: Message): Promise<number> {
    if (message.type === 'global') throw new TypeError('Messenger.send: publish globals with sendGlobal (retained chunk topics)');
    const topic =
      message.type === 'announce' ? this.topics.round
      : message.type === 'update' ? (message.shard === undefined ? this.topics.update(message.agent) : this.topics.shardUpdate(message.shard, message.agent))
      : message.type === 'partial' ? this.topics.partial(message.shard)
      : message.type === 'ack' ? this.topics.ack(message.agent)
      : this.topics.presence(message.agent);
    const chunks = splitMessage(this.#encode(message), this.#chunkBytes);
    // A new round opens every agent's allowance before the announcement can reach anyone
    // (a republished announcement of the same round leaves it as it is).
    if (message.type === 'announce' && message.round !== this.#announcedRound) {
      this.#announcedRound = message.round;
      this.#assembler.resetBudgets();
    }
    for (const c of chunks) await this.#publish(topic, c, message.type === 'announce');
    this.#stats.sent[message.type] = (this.#stats.sent[message.type] ?? 0) + 1;
    return chunks.reduce((a, c) => a + c.length, 0);
  }

  /**
   * Publishes a global as retained chunks on global/0 … global/n−1 and clears global/n …
   * global/(previousChunks − 1), left over from a larger one. Returns the chunk count (the
   * caller keeps it for the next call) and the bytes sent.
   */
  async sendGlobal(message: Global, previousChunks: number): Promise<{ chunks: number; bytes: number }> {
    const chunks = splitMessage(this.#encode(message), this.#chunkBytes);
    for (const [i, c] of chunks.entries()) await this.#publish(this.topics.global(i), c, true);
    for (let i = chunks.length; i < previousChunks; i++) await this.#publish(this.topics.global(i), new Uint8Array(0), true);
    this.#stats.sent.global = (this.#stats.sent.global ?? 0) + 1;
    return { chunks: chunks.length, bytes: chunks.reduce((a, c) => a + c.length, 0) };
  }

  /**
   * The message's wire bytes, signed when this end signs. The same message object sent again (an
   * agent's resend after a reconnect, a republished announcement) goes out as the same bytes while
   * at least half its lifetime is left, so receivers see a duplicate, not a second message.
   */
  #encode(message: Message): Uint8Array {
    const signer = this.#opts.signer;
    const now = this.#now();
    if (!signer) return encodeMessage(message);
    const kept = this.#wire.get(message);
    if (kept && kept.expiry - now > MESSAGE_LIFETIME_MS[message.type] / 2) return kept.bytes;
    let expiry = 0;
    const bytes = encodeMessage(message, (frame) => {
      const block = signBlock(message, frame, signer, now);
      expiry = block.expiry;
      return block;
    });
    this.#wire.set(message, { bytes, expiry });
    return bytes;
  }

  async #publish(topic: string, payload: Uint8Array, retain: boolean): Promise<void> {
    await this.#opts.transport.publish(topic, payload, { retain, qos: 1 });
    this.#stats.bytesOut += payload.length;
  }

  /** Forgets redelivery memory of the global stream, so retained copies are taken again (after a restart of state). */
  forgetGlobals(): void {
    this.#assembler.forget(streamOf(this.topics.global(0)));
  }

  close(): void {
    if (this.#expiry) clearInterval(this.#expiry);
    this.#expiry = undefined;
  }
}
