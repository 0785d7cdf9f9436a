/**
 * The MQTT transport: MQTT 3.1.1 (protocolVersion 4, what aedes, Mosquitto and EMQX all speak)
 * through mqtt.js 5. The only file that imports `mqtt`.
 *
 * Acknowledgement: mqtt.js sends the PUBACK of an inbound QoS 1 message when handleMessage calls
 * back, and parses no further packet until then. Holding that callback for the handler would also
 * hold the PUBACKs, SUBACKs and PINGRESPs meant for this client, so a handler that awaits a
 * publish (or runs longer than 1.5 keepalives) would deadlock or be dropped. Instead the override
 * queues the message and calls back at once without the PUBACK (an error argument makes mqtt.js
 * skip it); the queue is handed to the handler one message at a time and each PUBACK is sent,
 * in arrival order [MQTT-4.6.0-2], once its handler settled, on the connection it came over.
 *
 * Reconnects: mqtt.js retries every `options.reconnectPeriod`; this file doubles that on each
 * attempt (from reconnect.minMs up to maxMs) and resets it on a CONNACK. Subscriptions are made
 * again after every CONNACK (mqtt.js's own `resubscribe` is off), and 'connect' fires once their
 * SUBACK came, so a listener may rely on them; retained messages arrive again each time.
 */
import { Duplex } from 'node:stream';
import { connect as mqttConnect, MqttClient, type IClientOptions, type IPublishPacket } from 'mqtt';
import { IcosflError } from '../errors.js';
import { errnoWords, isSystemError } from '../system-errors.js';
import type { Logger } from '../log.js';
import {
  assertQoS,
  assertTopicFilter,
  assertTopicName,
  assertTransportEvent,
  closedError,
  resolveTransportOptions,
  type ResolvedTransportOptions,
} from './memory.js';
import type { TlsClientOptions } from './tls-credentials.js';
import type { MessageHandler, PublishOptions, QoS, Transport, TransportEvent, TransportOptions, TransportStatus } from './transport.js';

export interface MqttConnectOptions extends TransportOptions {
  /** A connection to use instead of a socket, made anew for every (re)connection. */
  stream?: () => Duplex;
  /**
   * For mqtts:// (ssl, tls, wss): the CA the broker's certificate must chain to (else the
   * system's) and the client certificate. The broker's host name is always verified.
   */
  tls?: TlsClientOptions;
  /** Take precedence over credentials in the URL. */
  username?: string;
  password?: string;
}

/** How long close() waits for unacknowledged publishes before it drops them. */
const CLOSE_GRACE_MS = 5_000;
/** A 3.1.1 DISCONNECT packet: the broker then discards the will [MQTT-3.14.4-3]. */
const DISCONNECT_PACKET = Buffer.from([0xe0, 0x00]);
const PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:']);
const TLS_PROTOCOLS = new Set(['mqtts:', 'ssl:', 'tls:', 'wss:']);
/** Node's codes for a broker certificate that does not verify (or names another host). */
const UNTRUSTED_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
/** Payloads from this size on are copied out of the socket read they arrived in (handleMessage). */
const COPY_PAYLOADS_FROM = 4096;
/** Passed to handleMessage's callback so mqtt.js leaves the PUBACK to this file. */
const ACK_DEFERRED = Object.freeze(new Error('puback deferred until the handler settled'));

interface BrokerTarget {
  /** The URL with credentials removed: what is connected to, shown and logged. */
  endpoint: string;
  username: string | undefined;
  password: string | undefined;
  tls: TlsClientOptions | undefined;
}

function parseBrokerUrl(url: string): BrokerTarget {
  if (typeof url !== 'string') throw new TypeError(`broker URL must be a string, got ${typeof url}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError('broker URL is not a valid URL (expected e.g. mqtt://127.0.0.1:1883)');
  }
  if (!PROTOCOLS.has(u.protocol)) throw new TypeError(`broker URL scheme '${u.protocol}' is not one of ${[...PROTOCOLS].join(' ')}`);
  const username = u.username === '' ? undefined : decodeURIComponent(u.username);
  const password = u.password === '' ? undefined : decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  return { endpoint: u.toString(), username, password, tls: undefined };
}

/**
 * A failed TLS handshake as the error a user can act on, or undefined for any other error:
 * the broker's certificate did not verify (TRANSPORT_TLS_UNTRUSTED), or the broker refused
 * this client's certificate (TRANSPORT_NOT_AUTHORISED: OpenSSL reports the broker's alert).
 */
function tlsFailure(err: Error, target: BrokerTarget): IcosflError | undefined {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const host = new URL(target.endpoint).hostname;
  if (UNTRUSTED_CERT_CODES.has(code) || err.message === 'TLS not authorized') {
    const ca = target.tls?.caFile ? `the CA file ${target.tls.caFile}` : "this system's CA store (no CA file configured)";
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? `its certificate must name '${host}' (scripts/gen-certs.sh --host ${host})` : 'the CA file must be the one that issued the broker certificate';
    return new IcosflError('TRANSPORT_TLS_UNTRUSTED', `${target.endpoint}: the broker's certificate did not verify against ${ca}: ${err.message} (${code || 'no code'}); ${hint}`, { cause: err });
  }
  if (/^ERR_SSL_.*ALERT/.test(code)) {
    const cert = target.tls?.certFile ? `this client's certificate ${target.tls.certFile}` : 'this client, which has no certificate,';
    // OpenSSL's message is a line of addresses and source paths; its `reason` is the alert in words.
    const reason = (err as { reason?: unknown }).reason;
    const said = typeof reason === 'string' && reason !== '' ? reason : err.message.trim();
    return new IcosflError('TRANSPORT_NOT_AUTHORISED', `${target.endpoint} refused ${cert} during the TLS handshake (${said}, ${code}); the broker wants a certificate issued by its CA (scripts/gen-certs.sh)`, { cause: err });
  }
  return undefined;
}

/** A CONNACK refusal: bad credentials or not authorised get NO_PERMISSION, the rest (server unavailable) UNAVAILABLE. */
function refusal(err: Error, target: BrokerTarget): IcosflError {
  const code = (err as { code?: unknown }).code;
  if (code === 4 || code === 5) {
    const who = target.username !== undefined ? `username '${target.username}' and its password` : target.tls?.certFile ? `the certificate ${target.tls.certFile}` : 'an anonymous client (no username, no certificate)';
    return new IcosflError('TRANSPORT_NOT_AUTHORISED', `${target.endpoint} refused the connection: ${err.message}: the broker does not accept ${who}; check the credentials configured for it`, { cause: err });
  }
  return unavailable(`${target.endpoint} refused the connection: ${causeWords(err)}`, err);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A socket error in words ("nothing is listening there (ECONNREFUSED)"), an MQTT one as the broker said it. */
function causeWords(err: unknown): string {
  return isSystemError(err) ? errnoWords(err) : err instanceof Error ? err.message : String(err);
}

function unavailable(message: string, cause?: unknown): IcosflError {
  return new IcosflError('TRANSPORT_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

/**
 * Connects and resolves on the first CONNACK; rejects with TRANSPORT_UNAVAILABLE when the broker
 * refuses the connection, or when none came within connectTimeoutMs (retrying with backoff until then).
 */
export async function connectMqtt(url: string, opts: MqttConnectOptions): Promise<MqttTransport> {
  const target = parseBrokerUrl(url);
  if (opts.username !== undefined) target.username = opts.username;
  if (opts.password !== undefined) target.password = opts.password;
  if (opts.tls !== undefined) {
    if (!TLS_PROTOCOLS.has(new URL(target.endpoint).protocol)) throw new TypeError(`tls options need an mqtts:// (ssl, tls, wss) broker URL, got ${target.endpoint}`);
    target.tls = opts.tls;
  }
  const resolved = resolveTransportOptions(opts);
  if (opts.stream !== undefined && typeof opts.stream !== 'function') throw new TypeError('stream must be a function returning a Duplex');
  let timer: NodeJS.Timeout | undefined;
  let settle!: (err?: Error) => void;
  const connected = new Promise<void>((resolve, reject) => {
    settle = (err) => {
      clearTimeout(timer);
      if (err === undefined) resolve();
      else reject(err);
    };
  });
  // The first CONNACK cannot come before the constructor returns: mqtt.js connects asynchronously.
  const transport = new MqttTransport(target, resolved, opts.stream, (err) => {
    if (err === undefined) return settle();
    transport.abort();
    settle(err instanceof IcosflError ? err : refusal(err, target));
  });
  timer = setTimeout(() => {
    const cause = transport.lastErrorObject;
    transport.abort();
    settle(unavailable(`could not connect to ${target.endpoint} within ${resolved.connectTimeoutMs} ms: ${cause ? causeWords(cause) : 'no CONNACK'}; is the broker running and federation.broker right?`, cause ?? undefined));
  }, resolved.connectTimeoutMs);
  await connected;
  return transport;
}

interface Inbound {
  packet: IPublishPacket;
  /** The connection it came over: its PUBACK goes on that one or not at all. */
  connection: number;
}

export class MqttTransport implements Transport {
  readonly clientId: string;
  readonly #client: MqttClient;
  readonly #opts: ResolvedTransportOptions;
  readonly #endpoint: string;
  readonly #target: BrokerTarget;
  readonly #log: Logger;
  #onFirstConnect: ((err?: Error) => void) | null;
  /** Counts CONNACKs; identifies the current connection. */
  #connection = 0;
  /** 'connect' was emitted for the current connection (so its loss is a 'disconnect'). */
  #announced = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #filters = new Map<string, QoS>();
  /** Packets not yet handled from #inboundHead on; handled slots are emptied at once. */
  #inbound: (Inbound | undefined)[] = [];
  #inboundHead = 0;
  #handler: MessageHandler | null = null;
  #pumping = false;
  readonly #pendingPublishes = new Set<(err: unknown) => void>();
  #subWaiters: { resolve(): void; reject(err: unknown): void }[] = [];
  readonly #listeners: Record<TransportEvent, Set<() => void>> = { connect: new Set(), disconnect: new Set() };
  #lastError: Error | null = null;
  #connectedAt: string | null = null;
  #reconnects = 0;
  #received = 0;
  #sent = 0;
  #bytesReceived = 0;
  #bytesSent = 0;

  /** Made by connectMqtt(), which waits for `onFirstConnect`. */
  constructor(target: BrokerTarget, opts: ResolvedTransportOptions, stream: (() => Duplex) | undefined, onFirstConnect: (err?: Error) => void) {
    this.clientId = opts.clientId;
    this.#opts = opts;
    this.#endpoint = target.endpoint;
    this.#target = target;
    this.#log = opts.logger;
    this.#onFirstConnect = onFirstConnect;
    const will = opts.will;
    const options: IClientOptions = {
      protocolVersion: 4,
      clientId: opts.clientId,
      clean: opts.clean,
      keepalive: opts.keepaliveS,
      reconnectPeriod: opts.reconnect.minMs,
      connectTimeout: opts.connectTimeoutMs,
      // A broker that refuses a reconnection (restarting, overloaded) is tried again with backoff.
      reconnectOnConnackError: true,
      resubscribe: false,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls === undefined
        ? {}
        : { rejectUnauthorized: true, ...(target.tls.ca ? { ca: target.tls.ca } : {}), ...(target.tls.cert ? { cert: target.tls.cert, key: target.tls.key } : {}) }),
      ...(will === undefined ? {} : { will: { topic: will.topic, payload: asBuffer(will.payload), qos: will.qos ?? 1, retain: will.retain ?? false } }),
    };
    // mqtt.js starts connecting here; no packet is parsed before the handlers below are in place.
    // (Not manualConnect: with it, end() re-arms reconnection when a late 'close' arrives.)
    this.#client = stream === undefined ? mqttConnect(target.endpoint, options) : new MqttClient(() => openStream(stream), options);
    this.#client.handleMessage = (packet, callback) => {
      // mqtt.js parses a payload that lies inside one socket read as a view of that read's buffer
      // (64 KB on a busy link): queued until its turn, it would keep the whole buffer alive, and
      // long enough to reach V8's old space. A large payload gets a buffer of its own.
      const p = packet.payload;
      if (typeof p !== 'string' && p.byteLength >= COPY_PAYLOADS_FROM && p.buffer.byteLength > p.byteLength) packet.payload = Buffer.from(p);
      this.#inbound.push({ packet, connection: this.#connection });
      this.#kick();
      if (packet.qos === 1) callback(ACK_DEFERRED);
      else callback();
    };
    this.#client.on('connect', (connack) => this.#onConnack(connack.sessionPresent));
    this.#client.on('close', () => this.#onClose());
    this.#client.on('reconnect', () => {
      // The attempt starting now failing means the next waits twice as long.
      const o = this.#client.options;
      o.reconnectPeriod = Math.min(this.#opts.reconnect.maxMs, (o.reconnectPeriod ?? this.#opts.reconnect.minMs) * 2);
    });
    this.#client.on('error', (err) => this.#onError(err));
  }

  async publish(topic: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<void> {
    assertTopicName(topic);
    if (!(payload instanceof Uint8Array)) throw new TypeError('payload must be a Uint8Array');
    const qos = opts.qos ?? 1;
    assertQoS(qos);
    if (this.#closed) throw closedError(this.clientId);
    await new Promise<void>((resolve, reject) => {
      this.#pendingPublishes.add(reject);
      // Offline, mqtt.js keeps the packet and sends it after the next CONNACK; this resolves on its PUBACK.
      this.#client.publish(topic, asBuffer(payload), { qos, retain: opts.retain ?? false }, (err) => {
        this.#pendingPublishes.delete(reject);
        if (err) reject(unavailable(`publish to '${topic}' via ${this.#endpoint} failed: ${err.message}`, err));
        else resolve();
      });
    });
    this.#sent++;
    this.#bytesSent += payload.length;
  }

  async subscribe(filter: string, qos: QoS = 1): Promise<void> {
    assertTopicFilter(filter);
    assertQoS(qos);
    if (this.#closed) throw closedError(this.clientId);
    this.#filters.set(filter, qos);
    if (this.#announced) {
      try {
        await this.#subscribeAll([filter]);
        return;
      } catch (err) {
        if (!isConnectionLoss(err)) {
          this.#filters.delete(filter);
          throw err;
        }
      }
    }
    if (this.#closed) throw closedError(this.clientId);
    // Offline (or lost mid-way): the next connection subscribes to every filter before 'connect'.
    await new Promise<void>((resolve, reject) => this.#subWaiters.push({ resolve, reject }));
  }

  async unsubscribe(filter: string): Promise<void> {
    assertTopicFilter(filter);
    if (this.#closed) throw closedError(this.clientId);
    this.#filters.delete(filter);
    if (!this.#client.connected) return; // mqtt.js would queue it; a new connection never subscribes it again
    try {
      await this.#client.unsubscribeAsync(filter);
    } catch (err) {
      if (!isConnectionLoss(err)) throw unavailable(`unsubscribe from '${filter}' via ${this.#endpoint} failed: ${(err as Error).message}`, err);
    }
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
      endpoint: this.#endpoint,
      clientId: this.clientId,
      connected: this.#client.connected,
      connectedAt: this.#connectedAt,
      reconnects: this.#reconnects,
      lastError: this.#lastError?.message ?? null,
      received: this.#received,
      sent: this.#sent,
      bytesReceived: this.#bytesReceived,
      bytesSent: this.#bytesSent,
    };
  }

  /** The wait before the next reconnection attempt (grows while the broker stays away). */
  get reconnectDelayMs(): number {
    return this.#client.options.reconnectPeriod ?? this.#opts.reconnect.minMs;
  }

  /** @internal for connectMqtt: the cause to report when the first connection never came. */
  get lastErrorObject(): Error | null {
    return this.#lastError;
  }

  /**
   * Ends with a DISCONNECT, so the broker drops the will. Waits up to 5 s for unacknowledged
   * publishes first; `force` does not wait, and publishes not yet acknowledged are rejected.
   */
  async close(opts: { force?: boolean } = {}): Promise<void> {
    if (this.#closing === null) {
      this.#shutDown();
      this.#closing = this.#end(opts.force === true);
    }
    await this.#closing;
  }

  /**
   * Test hook: the process died. The connection is dropped without a DISCONNECT, so the broker
   * publishes the will; nothing is delivered or retried any more.
   */
  async crash(): Promise<void> {
    if (this.#closing === null) {
      this.#shutDown();
      this.#closing = new Promise<void>((resolve) => this.#client.end(true, () => resolve()));
    }
    await this.#closing;
    this.#rejectPending();
  }

  /** Test hook: the network dropped the connection; the transport reconnects on its own. */
  dropConnection(): void {
    if (!this.#closed) this.#client.stream?.destroy();
  }

  /** @internal for connectMqtt: stop at once after a failed first connection. */
  abort(): void {
    this.#onFirstConnect = null;
    this.#shutDown();
    this.#client.end(true);
  }

  #onConnack(sessionPresent: boolean): void {
    const connection = ++this.#connection;
    // Nagle's algorithm holds a small packet (a PUBACK, an ack) until the previous one is
    // acknowledged, and the peer's delayed ACK can hold that for 40 ms: a request–response
    // protocol of small messages wants every packet sent at once.
    (this.#client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined)?.setNoDelay?.(true);
    if (!this.#closed) this.#client.options.reconnectPeriod = this.#opts.reconnect.minMs;
    this.#connectedAt = new Date().toISOString();
    if (connection > 1) this.#reconnects++;
    this.#log.info({ endpoint: this.#endpoint, sessionPresent, reconnects: this.#reconnects }, 'broker connected');
    void this.#announce(connection);
  }

  /** Subscriptions first, then 'connect': its listeners may count on them. */
  async #announce(connection: number): Promise<void> {
    // Filters added while a SUBSCRIBE is out are taken on the next turn of the loop.
    const done = new Set<string>();
    for (;;) {
      const todo = [...this.#filters.keys()].filter((f) => !done.has(f));
      if (todo.length === 0 || this.#closed || connection !== this.#connection) break;
      for (const f of todo) done.add(f);
      try {
        await this.#subscribeAll(todo);
      } catch (err) {
        if (isConnectionLoss(err)) return; // the next connection tries again
        this.#log.warn({ err, endpoint: this.#endpoint }, 'resubscribe refused');
      }
    }
    if (this.#closed || connection !== this.#connection || !this.#client.connected) return;
    this.#announced = true;
    const waiters = this.#subWaiters;
    this.#subWaiters = [];
    for (const w of waiters) w.resolve();
    const first = this.#onFirstConnect;
    this.#onFirstConnect = null;
    first?.();
    this.#emit('connect');
  }

  async #subscribeAll(filters: string[]): Promise<void> {
    const map: Record<string, { qos: QoS }> = {};
    for (const f of filters) map[f] = { qos: this.#filters.get(f) ?? 1 };
    try {
      await this.#client.subscribeAsync(map);
    } catch (err) {
      if (isConnectionLoss(err)) throw err;
      // mqtt.js rejects when any return code has bit 7 set; the SUBACK says which (128 = refused).
      const granted = (err as { packet?: { granted?: unknown } }).packet?.granted;
      const codes = Array.isArray(granted) ? ` (SUBACK ${granted.join(', ')})` : '';
      throw unavailable(`${this.#endpoint} refused the subscription to ${filters.join(', ')}${codes}`, err);
    }
  }

  #onClose(): void {
    if (!this.#announced) return; // a failed attempt, not a loss
    this.#announced = false;
    if (this.#closed) return;
    this.#log.warn({ endpoint: this.#endpoint, lastError: this.#lastError?.message }, 'broker connection lost');
    this.#emit('disconnect');
  }

  #onError(err: Error): void {
    const tls = tlsFailure(err, this.#target);
    this.#lastError = tls ?? err;
    this.#log.debug({ err, endpoint: this.#endpoint }, 'mqtt client error');
    // A CONNACK refusal (bad credentials, client id refused) or a certificate that does not
    // verify will not pass on the next try.
    if (this.#onFirstConnect !== null && (tls !== undefined || err.message.startsWith('Connection refused'))) {
      const first = this.#onFirstConnect;
      this.#onFirstConnect = null;
      first(tls ?? err);
    }
  }

  #shutDown(): void {
    this.#closed = true;
    this.#client.options.reconnectPeriod = 0; // no attempt after this, whatever mqtt.js hears next
    this.#inbound = [];
    this.#inboundHead = 0;
    const err = closedError(this.clientId);
    for (const w of this.#subWaiters) w.reject(err);
    this.#subWaiters = [];
    this.#listeners.connect.clear();
    this.#listeners.disconnect.clear();
  }

  async #end(force: boolean): Promise<void> {
    const client = this.#client;
    if (!force && client.connected) await this.#settlePublishes();
    await new Promise<void>((resolve) => {
      if (!force && client.connected && Object.keys(client.outgoing).length === 0) {
        // mqtt.js sends DISCONNECT, ends the stream and calls back on its 'close'.
        const timer = setTimeout(() => client.stream?.destroy(), CLOSE_GRACE_MS);
        client.end(false, () => {
          clearTimeout(timer);
          resolve();
        });
        return;
      }
      // At once: a DISCONNECT still goes first where nothing is half-written, so no will fires.
      const stream = client.stream;
      if (client.connected && stream && !stream.destroyed && stream.writableLength === 0) stream.write(DISCONNECT_PACKET);
      client.end(true, () => resolve());
    });
    this.#rejectPending();
  }

  /** Waits (bounded) for the publishes in flight: close() means "after what I sent". */
  async #settlePublishes(): Promise<void> {
    const deadline = Date.now() + CLOSE_GRACE_MS;
    while (this.#pendingPublishes.size > 0 && this.#client.connected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  #rejectPending(): void {
    const err = unavailable(`transport '${this.clientId}' closed before ${this.#endpoint} acknowledged the publish`);
    for (const reject of this.#pendingPublishes) reject(err);
    this.#pendingPublishes.clear();
  }

  #kick(): void {
    if (this.#pumping || this.#handler === null || this.#inboundHead >= this.#inbound.length) return;
    this.#pumping = true;
    setImmediate(() => void this.#pump());
  }

  /** The one delivery loop: the next message (and this one's PUBACK) waits for the handler. */
  async #pump(): Promise<void> {
    try {
      while (!this.#closed && this.#handler !== null && this.#inboundHead < this.#inbound.length) {
        const item = this.#inbound[this.#inboundHead]!;
        // Let go of the packet now: a handled slot left filled until the next compaction kept up
        // to a thousand payloads alive (a round's 24 KB updates: tens of MB of RSS).
        this.#inbound[this.#inboundHead++] = undefined;
        if (this.#inboundHead === this.#inbound.length) {
          this.#inbound = [];
          this.#inboundHead = 0;
        } else if (this.#inboundHead > 1024 && this.#inboundHead * 2 > this.#inbound.length) {
          this.#inbound = this.#inbound.slice(this.#inboundHead);
          this.#inboundHead = 0;
        }
        const { packet } = item;
        const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
        this.#received++;
        this.#bytesReceived += payload.length;
        try {
          await this.#handler({ topic: packet.topic, payload, retained: packet.retain });
        } catch (err) {
          // Acknowledged all the same: a message that always fails must not come back forever.
          this.#log.warn({ err, topic: packet.topic }, 'message handler failed');
        }
        this.#ack(item);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #ack(item: Inbound): void {
    const { packet } = item;
    if (packet.qos !== 1 || item.connection !== this.#connection || !this.#client.connected) return;
    // mqtt.js's own handlers send acknowledgements this way.
    this.#client['_sendPacket']({ cmd: 'puback', messageId: packet.messageId }, () => {});
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

/**
 * mqtt.js calls the stream builder from a timer: a builder that throws (the embedded broker has
 * closed) must fail this attempt like a refused socket, not crash the process.
 */
function openStream(build: () => Duplex): Duplex {
  try {
    return build();
  } catch (err) {
    const failed = new Duplex({ read() {}, write: (_chunk, _encoding, cb) => cb() });
    process.nextTick(() => failed.destroy(err instanceof Error ? err : new Error(String(err))));
    return failed;
  }
}

/** mqtt.js's errors for a request cut short by the connection going away. */
function isConnectionLoss(err: unknown): boolean {
  const message = (err as Error | undefined)?.message ?? '';
  return message === 'Connection closed' || message === 'client disconnecting';
}
