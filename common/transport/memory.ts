/**
 * The in-process transport: a MemoryBus plays the broker (topic filters, retained messages, wills,
 * persistent sessions) and each MemoryTransport is one client of it. simulate runs 50+ agents and
 * the coordinator over one bus, so routing is a plain loop over sessions and a payload is copied
 * once per publish (the publisher may reuse its buffer), never per subscriber: handlers must
 * treat an inbound payload as read-only.
 *
 * Delivery follows transport.ts: asynchronous (setImmediate, never inside publish), in publish
 * order, one message at a time per transport; a QoS 1 message stays unacknowledged in its session
 * until the handler settles, so a persistent session gets it again after a crash.
 *
 * The topic rules and option defaults at the top are shared with mqtt.ts, so both transports
 * refuse the same misuse with the same errors.
 */
import { IcosflError } from '../errors.js';
import { childLogger, type Logger } from '../log.js';
import {
  DEFAULT_RECONNECT,
  type InboundMessage,
  type MessageHandler,
  type PublishOptions,
  type QoS,
  type ReconnectPolicy,
  type Transport,
  type TransportEvent,
  type TransportOptions,
  type TransportStatus,
  type WillMessage,
} from './transport.js';

// ---------------------------------------------------------------------------------------------
// Topic rules (MQTT 3.1.1 §4.7)

const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_TOPIC_BYTES = 65_535;

function checkTopicString(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string, got ${typeof value}`);
  if (value.length === 0) throw new TypeError(`${what} must not be empty`);
  if (value.includes('\u0000')) throw new TypeError(`${what} must not contain U+0000`);
  if (Buffer.byteLength(value) > MAX_TOPIC_BYTES) throw new TypeError(`${what} must be at most ${MAX_TOPIC_BYTES} bytes of UTF-8`);
}

/** A topic a message is published to: no wildcards. */
export function assertTopicName(topic: unknown): asserts topic is string {
  checkTopicString('topic', topic);
  if (topic.includes('+') || topic.includes('#')) throw new TypeError(`topic '${topic}' must not contain the wildcards + or #`);
}

/** A subscription filter: `+` fills one whole level, `#` only the whole last level. */
export function assertTopicFilter(filter: unknown): asserts filter is string {
  checkTopicString('topic filter', filter);
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      throw new TypeError(`topic filter '${filter}': # must be the whole last level`);
    }
    if (level.includes('+') && level !== '+') throw new TypeError(`topic filter '${filter}': + must be a whole level`);
  });
}

function matchLevels(filter: readonly string[], topic: readonly string[]): boolean {
  // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match topics starting with '$'.
  if ((filter[0] === '+' || filter[0] === '#') && topic[0]!.startsWith('$')) return false;
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i];
    if (level === '#') return true; // 'a/#' also matches 'a' (its parent level)
    if (i >= topic.length || (level !== '+' && level !== topic[i])) return false;
  }
  return filter.length === topic.length;
}

/** Whether `topic` matches the (valid) filter `filter`. */
export function topicMatches(filter: string, topic: string): boolean {
  return matchLevels(filter.split('/'), topic.split('/'));
}

// ---------------------------------------------------------------------------------------------
// Options shared by both transports: validated and defaulted in one place.

export const TRANSPORT_DEFAULTS = { clean: true, keepaliveS: 30, connectTimeoutMs: 10_000 } as const;

export interface ResolvedTransportOptions {
  clientId: string;
  will: WillMessage | undefined;
  clean: boolean;
  keepaliveS: number;
  reconnect: ReconnectPolicy;
  connectTimeoutMs: number;
  logger: Logger;
}

export function assertQoS(qos: unknown, what = 'qos'): asserts qos is QoS {
  if (qos !== 0 && qos !== 1) throw new RangeError(`${what} must be 0 or 1, got ${String(qos)}`);
}

function checkPositive(what: string, value: number, integer: boolean, allowZero = false): void {
  const ok = Number.isFinite(value) && (allowZero ? value >= 0 : value > 0) && (!integer || Number.isInteger(value));
  if (!ok) throw new RangeError(`${what} must be a ${integer ? 'whole ' : ''}number ${allowZero ? '≥' : '>'} 0, got ${value}`);
}

export function resolveTransportOptions(opts: TransportOptions): ResolvedTransportOptions {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('transport options must be an object');
  if (typeof opts.clientId !== 'string' || !CLIENT_ID.test(opts.clientId)) {
    throw new RangeError(`clientId must be 1–64 of [A-Za-z0-9._-], got '${String(opts.clientId)}'`);
  }
  const keepaliveS = opts.keepaliveS ?? TRANSPORT_DEFAULTS.keepaliveS;
  checkPositive('keepaliveS', keepaliveS, true, true);
  if (keepaliveS > 65_535) throw new RangeError(`keepaliveS must be at most 65535, got ${keepaliveS}`);
  const reconnect = opts.reconnect ?? DEFAULT_RECONNECT;
  checkPositive('reconnect.minMs', reconnect.minMs, false);
  checkPositive('reconnect.maxMs', reconnect.maxMs, false);
  if (reconnect.maxMs < reconnect.minMs) throw new RangeError(`reconnect.maxMs (${reconnect.maxMs}) must be ≥ reconnect.minMs (${reconnect.minMs})`);
  const connectTimeoutMs = opts.connectTimeoutMs ?? TRANSPORT_DEFAULTS.connectTimeoutMs;
  checkPositive('connectTimeoutMs', connectTimeoutMs, false);
  if (opts.will !== undefined) {
    assertTopicName(opts.will.topic);
    if (!(opts.will.payload instanceof Uint8Array)) throw new TypeError('will.payload must be a Uint8Array');
    if (opts.will.qos !== undefined) assertQoS(opts.will.qos, 'will.qos');
  }
  return {
    clientId: opts.clientId,
    will: opts.will,
    clean: opts.clean ?? TRANSPORT_DEFAULTS.clean,
    keepaliveS,
    reconnect: { minMs: reconnect.minMs, maxMs: reconnect.maxMs },
    connectTimeoutMs,
    logger: opts.logger ?? childLogger('transport', { clientId: opts.clientId }),
  };
}

export function assertTransportEvent(event: unknown): asserts event is TransportEvent {
  if (event !== 'connect' && event !== 'disconnect') throw new TypeError(`transport event must be 'connect' or 'disconnect', got '${String(event)}'`);
}

export function closedError(clientId: string): IcosflError {
  return new IcosflError('TRANSPORT_UNAVAILABLE', `transport '${clientId}' is closed`);
}

// ---------------------------------------------------------------------------------------------
// The bus

/** One message on its way to one session. The payload is shared by every receiver. */
interface Routed {
  topic: string;
  payload: Uint8Array;
  retained: boolean;
  qos: QoS;
}

/** What the bus holds of a connected transport: closures over its private state. */
interface Link {
  deliver(message: Routed): void;
  /** Another connection took this client id over: drop as a network loss would. */
  evict(): void;
}

interface Subscription {
  qos: QoS;
  levels: string[];
}

class Session {
  readonly subs = new Map<string, Subscription>();
  /** QoS 1 messages routed while no link was up (persistent sessions only). */
  offline: Routed[] = [];
  /** QoS 1 messages handed to the link and not yet handled, oldest first. */
  unacked: Routed[] = [];
  link: Link | null = null;
  constructor(readonly persistent: boolean) {}
}

export interface MemoryBusStats {
  /** Sessions held: connected clients plus disconnected persistent ones. */
  sessions: number;
  connected: number;
  retained: number;
  published: number;
  /** Copies handed to subscribers' links. */
  delivered: number;
  /** QoS 1 messages waiting for a persistent session's client to come back. */
  queued: number;
}

/** The broker side; MemoryTransport talks to it, nothing else does. */
class BusCore {
  readonly sessions = new Map<string, Session>();
  readonly retained = new Map<string, { payload: Uint8Array; qos: QoS }>();
  published = 0;
  delivered = 0;

  open(clientId: string, clean: boolean, link: Link): { session: Session; sessionPresent: boolean } {
    // [MQTT-3.1.4-2]: a second connection with the same client id takes over from the first.
    this.sessions.get(clientId)?.link?.evict();
    let session = this.sessions.get(clientId);
    const sessionPresent = !clean && session !== undefined;
    if (!sessionPresent) {
      session = new Session(!clean);
      this.sessions.set(clientId, session);
    }
    const s = session!;
    s.link = link;
    const offline = s.offline;
    s.offline = [];
    for (const message of offline) this.deliverTo(s, message);
    return { session: s, sessionPresent };
  }

  /** The link went away; `will` is published when it went without a clean close. */
  drop(clientId: string, session: Session, link: Link, will: WillMessage | undefined): void {
    if (session.link !== link) return;
    session.link = null;
    if (session.persistent) {
      // Unhandled messages go back in front of the queue, as a broker resends un-PUBACKed ones.
      session.offline = session.unacked.concat(session.offline);
      session.unacked = [];
    } else if (this.sessions.get(clientId) === session) {
      this.sessions.delete(clientId);
    }
    if (will) this.publish(will.topic, new Uint8Array(will.payload), will.retain ?? false, will.qos ?? 1);
  }

  publish(topic: string, payload: Uint8Array, retain: boolean, qos: QoS): void {
    this.published++;
    if (retain) {
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, { payload, qos });
    }
    const levels = topic.split('/');
    for (const session of this.sessions.values()) {
      let granted = -1;
      for (const sub of session.subs.values()) {
        if (sub.qos > granted && matchLevels(sub.levels, levels)) granted = sub.qos;
      }
      if (granted >= 0) this.deliverTo(session, { topic, payload, retained: false, qos: Math.min(granted, qos) as QoS });
    }
  }

  subscribe(session: Session, filter: string, qos: QoS): void {
    const levels = filter.split('/');
    session.subs.set(filter, { qos, levels });
    // A (re-)subscription gets the matching retained messages, as on a broker [MQTT-3.3.1-6].
    for (const [topic, r] of this.retained) {
      if (matchLevels(levels, topic.split('/'))) this.deliverTo(session, { topic, payload: r.payload, retained: true, qos: Math.min(qos, r.qos) as QoS });
    }
  }

  ack(session: Session, message: Routed): void {
    const i = session.unacked.indexOf(message);
    if (i === 0) session.unacked.shift();
    else if (i > 0) session.unacked.splice(i, 1);
  }

  private deliverTo(session: Session, message: Routed): void {
    if (session.link) {
      if (message.qos === 1) session.unacked.push(message);
      this.delivered++;
      session.link.deliver(message);
    } else if (session.persistent && message.qos === 1) {
      session.offline.push(message);
    }
  }
}

/** An in-process broker. Deterministic: no timers, delivery by setImmediate in publish order. */
export class MemoryBus {
  readonly #core = new BusCore();

  /** A client of this bus; resolves connected, as connectMqtt does. */
  async connect(opts: TransportOptions): Promise<MemoryTransport> {
    return new MemoryTransport(this.#core, resolveTransportOptions(opts));
  }

  stats(): MemoryBusStats {
    let connected = 0;
    let queued = 0;
    for (const s of this.#core.sessions.values()) {
      if (s.link) connected++;
      queued += s.offline.length;
    }
    return {
      sessions: this.#core.sessions.size,
      connected,
      retained: this.#core.retained.size,
      published: this.#core.published,
      delivered: this.#core.delivered,
      queued,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The client

interface Inbound {
  message: Routed;
  /** The link it came over: only that link's session may be told it was handled. */
  link: Link;
}

interface Outgoing {
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  qos: QoS;
  resolve(): void;
  reject(err: unknown): void;
}

type State = 'connected' | 'disconnected' | 'closed';

export class MemoryTransport implements Transport {
  readonly clientId: string;
  readonly #core: BusCore;
  readonly #opts: ResolvedTransportOptions;
  readonly #log: Logger;
  #state: State = 'disconnected';
  #session: Session | null = null;
  #link: Link | null = null;
  /** What this client subscribed to: made again on every (re)connection. */
  readonly #filters = new Map<string, QoS>();
  #inbound: Inbound[] = [];
  #inboundHead = 0;
  #handler: MessageHandler | null = null;
  #pumping = false;
  /** Publishes and subscribes made while disconnected, done on the next connection. */
  #outbox: Outgoing[] = [];
  #subWaiters: { resolve(): void; reject(err: unknown): void }[] = [];
  readonly #listeners: Record<TransportEvent, Set<() => void>> = { connect: new Set(), disconnect: new Set() };
  #connectedAt: string | null = null;
  #connections = 0;
  #received = 0;
  #sent = 0;
  #bytesReceived = 0;
  #bytesSent = 0;

  /** Made by MemoryBus.connect(); connected on return. */
  constructor(core: BusCore, opts: ResolvedTransportOptions) {
    this.clientId = opts.clientId;
    this.#core = core;
    this.#opts = opts;
    this.#log = opts.logger;
    this.#open();
  }

  async publish(topic: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<void> {
    assertTopicName(topic);
    if (!(payload instanceof Uint8Array)) throw new TypeError('payload must be a Uint8Array');
    const qos = opts.qos ?? 1;
    assertQoS(qos);
    if (this.#state === 'closed') throw closedError(this.clientId);
    // One copy, so the caller may reuse its buffer; every subscriber shares it.
    const copy = new Uint8Array(payload);
    const retain = opts.retain ?? false;
    if (this.#state === 'connected') {
      this.#send(topic, copy, retain, qos);
      return;
    }
    await new Promise<void>((resolve, reject) => this.#outbox.push({ topic, payload: copy, retain, qos, resolve, reject }));
  }

  async subscribe(filter: string, qos: QoS = 1): Promise<void> {
    assertTopicFilter(filter);
    assertQoS(qos);
    if (this.#state === 'closed') throw closedError(this.clientId);
    this.#filters.set(filter, qos);
    if (this.#state === 'connected') {
      this.#core.subscribe(this.#session!, filter, qos);
      return;
    }
    await new Promise<void>((resolve, reject) => this.#subWaiters.push({ resolve, reject }));
  }

  async unsubscribe(filter: string): Promise<void> {
    assertTopicFilter(filter);
    if (this.#state === 'closed') throw closedError(this.clientId);
    this.#filters.delete(filter);
    this.#session?.subs.delete(filter);
  }

  onMessage(handler: MessageHandler): void {
    if (typeof handler !== 'function') throw new TypeError('onMessage needs a function');
    this.#handler = handler;
    this.#kick();
  }

  on(event: TransportEvent, listener: () => void): void {
    assertTransportEvent(event);
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this.#listeners[event].add(listener);
  }

  status(): TransportStatus {
    return {
      endpoint: 'memory',
      clientId: this.clientId,
      connected: this.#state === 'connected',
      connectedAt: this.#connectedAt,
      reconnects: Math.max(0, this.#connections - 1),
      lastError: null,
      received: this.#received,
      sent: this.#sent,
      bytesReceived: this.#bytesReceived,
      bytesSent: this.#bytesSent,
    };
  }

  /** A clean close: no will; a persistent session stays on the bus for the next connect. */
  async close(_opts: { force?: boolean } = {}): Promise<void> {
    if (this.#state === 'closed') return;
    this.#drop(false);
    this.#shutDown();
  }

  /** Test hook: the process died. The bus publishes the will; nothing is delivered any more. */
  crash(): void {
    if (this.#state === 'closed') return;
    this.#drop(true);
    this.#shutDown();
  }

  /**
   * Test hook: the network went away. The will is published, 'disconnect' fires, messages already
   * received are still handled; publishes wait for reconnect().
   */
  disconnect(): void {
    if (this.#state !== 'connected') return;
    this.#drop(true);
    this.#emit('disconnect');
  }

  /** Test hook: back after disconnect(); resubscribes, sends what waited, fires 'connect'. */
  async reconnect(): Promise<void> {
    if (this.#state === 'closed') throw closedError(this.clientId);
    if (this.#state === 'connected') return;
    this.#open();
  }

  #open(): void {
    const link: Link = {
      deliver: (message) => {
        this.#inbound.push({ message, link });
        this.#kick();
      },
      evict: () => {
        if (this.#link !== link) return;
        this.#drop(true);
        this.#emit('disconnect');
      },
    };
    const { session } = this.#core.open(this.clientId, this.#opts.clean, link);
    this.#session = session;
    this.#link = link;
    this.#state = 'connected';
    this.#connections++;
    this.#connectedAt = new Date().toISOString();
    // Like mqtt.ts: subscriptions are made again on every connection (retained messages follow).
    for (const [filter, qos] of this.#filters) this.#core.subscribe(session, filter, qos);
    const outbox = this.#outbox;
    this.#outbox = [];
    for (const o of outbox) {
      this.#send(o.topic, o.payload, o.retain, o.qos);
      o.resolve();
    }
    const waiters = this.#subWaiters;
    this.#subWaiters = [];
    for (const w of waiters) w.resolve();
    if (this.#connections > 1) this.#emit('connect');
  }

  #drop(abnormal: boolean): void {
    if (this.#state !== 'connected') return;
    const link = this.#link!;
    this.#link = null;
    this.#state = 'disconnected';
    this.#core.drop(this.clientId, this.#session!, link, abnormal ? this.#opts.will : undefined);
    this.#session = null;
  }

  #shutDown(): void {
    this.#state = 'closed';
    this.#inbound = [];
    this.#inboundHead = 0;
    const err = closedError(this.clientId);
    for (const o of this.#outbox) o.reject(err);
    for (const w of this.#subWaiters) w.reject(err);
    this.#outbox = [];
    this.#subWaiters = [];
    this.#listeners.connect.clear();
    this.#listeners.disconnect.clear();
  }

  #send(topic: string, payload: Uint8Array, retain: boolean, qos: QoS): void {
    this.#core.publish(topic, payload, retain, qos);
    this.#sent++;
    this.#bytesSent += payload.length;
  }

  #kick(): void {
    if (this.#pumping || this.#handler === null || this.#inboundHead >= this.#inbound.length) return;
    this.#pumping = true;
    setImmediate(() => void this.#pump());
  }

  /** The one delivery loop: the next message waits until the handler's promise settled. */
  async #pump(): Promise<void> {
    try {
      while (this.#state !== 'closed' && this.#handler !== null && this.#inboundHead < this.#inbound.length) {
        const item = this.#inbound[this.#inboundHead++]!;
        if (this.#inboundHead > 1024 && this.#inboundHead * 2 > this.#inbound.length) {
          this.#inbound = this.#inbound.slice(this.#inboundHead);
          this.#inboundHead = 0;
        }
        const { topic, payload, retained } = item.message;
        this.#received++;
        this.#bytesReceived += payload.length;
        try {
          await this.#handler({ topic, payload, retained } satisfies InboundMessage);
        } catch (err) {
          // Counted as handled all the same: a message that always fails must not come back forever.
          this.#log.warn({ err, topic }, 'message handler failed');
        }
        if (item.link === this.#link && item.message.qos === 1) this.#core.ack(this.#session!, item.message);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #emit(event: TransportEvent): void {
    for (const listener of [...this.#listeners[event]]) {
      try {
        listener();
      } catch (err) {
        this.#log.warn({ err, event }, 'transport event listener failed');
      }
    }
  }
}
