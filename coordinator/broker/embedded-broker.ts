/**
 * The zero-setup broker: aedes 1.2 on a loopback port, for a federation without a Mosquitto or
 * EMQX of its own. The coordinator reaches it through trustedStream() (an in-process stream
 * pair, no socket); agents on this host connect to `url`.
 *
 * Guards, in authorizePublish / authorizeSubscribe, because aedes takes by default what the
 * protocol allows:
 * - no publish to a `$` topic (`$SYS/...` included) from anyone: aedes itself listens on
 *   `$SYS/+/new/clients` and closes the client named there;
 * - retained publishes (wills included) only over a trusted stream: agents read the current
 *   round from retained topics, so no agent may plant one;
 * - no subscription to `$...` or to a filter whose first level is a wildcard (`#`, `+/#`, `+/+/x`):
 *   an agent subscribes to its federation's topics, never to everything.
 * With `tls` (the federation's certificates, scripts/gen-certs.sh) it listens for mqtts:// only,
 * takes no client without a certificate from the federation CA, takes the certificate's CN as the
 * client's identity (the client id must be that CN: nobody takes over another's session), and
 * grants what common/protocol/acl.ts grants that identity, as Mosquitto does with
 * deploy/mosquitto/acl; the trusted in-process stream is the coordinator's identity. It may then
 * listen beyond loopback.
 * MQTT 3.1.1 cannot tell a client its publish was refused [MQTT-3.3.5-2]: aedes sends no PUBACK,
 * reports `clientError` and closes the connection (so the client's will, if it may have one, is
 * published). The message is neither stored as retained nor forwarded. A refused subscription
 * gets SUBACK code 128 and nothing, retained messages included, is delivered for it.
 */
import { createServer, isIPv4, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { IcosflError } from '../../common/errors.js';
import { errnoWords } from '../../common/system-errors.js';
import { childLogger, type Logger } from '../../common/log.js';
import { aclIdentity, COORDINATOR_IDENTITY, mayPublish, maySubscribe, type AclIdentity } from '../../common/protocol/acl.js';
import type { TlsServerMaterial } from '../../common/transport/tls-credentials.js';

/** Extra checks, consulted after the guards and (with tls) the federation ACL, which they cannot loosen. */
export interface BrokerAuthorizer {
  publish?(clientId: string, topic: string, trusted: boolean): boolean;
  subscribe?(clientId: string, filter: string, trusted: boolean): boolean;
}

export interface EmbeddedBrokerOptions {
  /** A loopback address; default '127.0.0.1'. */
  host?: string;
  /** 0 (default) takes a free port. */
  port?: number;
  logger?: Logger;
  authorize?: BrokerAuthorizer;
  /** mqtts:// with client certificates and the federation ACL (see above). */
  tls?: TlsServerMaterial;
  /** The federation the ACL grants topics of; default '+' (any). */
  federation?: string;
  /** The CN that is the coordinator's; default 'icosfl-coordinator'. */
  coordinatorIdentity?: string;
}

export interface EmbeddedBrokerStats {
  /** Connected clients (the trusted ones included). */
  clients: number;
  /** Publishes taken from clients (wills included, `$SYS` heartbeats not), and their payload bytes. */
  published: number;
  publishedBytes: number;
  refusedPublishes: number;
  refusedSubscriptions: number;
}

export interface EmbeddedBroker {
  /** mqtt://127.0.0.1:PORT, or mqtts:// with tls */
  readonly url: string;
  readonly port: number;
  /** A fresh connection for an in-process client that may publish retained messages. */
  trustedStream(): Duplex;
  stats(): EmbeddedBrokerStats;
  /** Disconnects every client and frees the port. */
  close(): Promise<void>;
}

/**
 * drainTimeout: a subscriber whose socket stays full for 10 s is dropped instead of stalling
 * delivery to everyone (aedes' default 60 s is long beside a round). concurrency: messages in
 * flight at once in aedes' emitter; 256 covers a round's chunks to 50+ agents without queueing.
 */
export const EMBEDDED_BROKER_DEFAULTS = { host: '127.0.0.1', port: 0, drainTimeoutMs: 10_000, concurrency: 256 } as const;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

/** [MQTT-4.7.2-1]-style reach: a filter starting with a wildcard sees every tree on the broker. */
function isForbiddenFilter(filter: string): boolean {
  return filter.startsWith('$') || filter.startsWith('#') || filter.startsWith('+');
}

/**
 * One end of an in-memory connection: what one end writes the other reads, with backpressure.
 * Destroying an end lets the other read what was already written (a DISCONNECT, say) before EOF.
 */
class PairEnd extends Duplex {
  peer!: PairEnd;
  #pendingWrite: ((err?: Error | null) => void) | null = null;
  #eofSent = false;

  constructor() {
    super({ allowHalfOpen: false });
  }

  override _read(): void {
    const cb = this.peer.#pendingWrite;
    this.peer.#pendingWrite = null;
    cb?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#eofSent || this.peer.destroyed) return cb();
    if (this.peer.push(chunk)) cb();
    else this.#pendingWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#sendEof();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#sendEof();
    const pending = this.#pendingWrite;
    this.#pendingWrite = null;
    pending?.();
    cb(err);
  }

  #sendEof(): void {
    if (this.#eofSent) return;
    this.#eofSent = true;
    if (!this.peer.destroyed) this.peer.push(null);
  }
}

function streamPair(): [PairEnd, PairEnd] {
  const a = new PairEnd();
  const b = new PairEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = opts.host ?? EMBEDDED_BROKER_DEFAULTS.host;
  if (typeof host !== 'string' || (!isLoopback(host) && opts.tls === undefined)) {
    throw new RangeError(`embedded broker host must be a loopback address (127.x.x.x, ::1, localhost) without tls, got '${String(host)}': it has no authentication then`);
  }
  const port = opts.port ?? EMBEDDED_BROKER_DEFAULTS.port;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`embedded broker port must be an integer 0–65535, got ${port}`);
  const log = opts.logger ?? childLogger('broker');
  const authorize = opts.authorize ?? {};

  // Broker-side ends of trustedStream() pairs; aedes keeps the stream it was handed as client.conn.
  const trusted = new WeakSet<object>();
  const isTrusted = (client: Client | null): boolean => client !== null && trusted.has(client.conn);
  const federation = opts.federation ?? '+';
  const coordinatorIdentity = opts.coordinatorIdentity ?? COORDINATOR_IDENTITY;
  const coordinator: AclIdentity = { role: 'coordinator', name: coordinatorIdentity };
  // With tls: each authenticated client's identity (its certificate's CN); the ACL applies to all.
  const identities = new WeakMap<Client, AclIdentity>();
  const identityOf = (client: Client | null): AclIdentity | undefined => (client === null ? undefined : isTrusted(client) ? coordinator : identities.get(client));
  const aclRefusal = (client: Client | null, allowed: (who: AclIdentity) => boolean): string | null => {
    if (opts.tls === undefined) return null;
    const who = identityOf(client);
    return who === undefined ? 'no identity' : allowed(who) ? null : `not granted to ${who.role} '${who.name}' by the federation ACL`;
  };
  const stats = { published: 0, publishedBytes: 0, refusedPublishes: 0, refusedSubscriptions: 0 };

  const refusePublish = (client: Client | null, packet: PublishPacket, reason: string, cb: (err?: Error | null) => void): void => {
    stats.refusedPublishes++;
    log.warn({ event: 'publish-refused', clientId: client?.id, topic: packet.topic, retain: packet.retain, reason }, 'publish refused');
    cb(new Error(`publish to '${packet.topic}' refused: ${reason}`));
  };

  const aedes = await Aedes.createBroker({
    drainTimeout: EMBEDDED_BROKER_DEFAULTS.drainTimeoutMs,
    concurrency: EMBEDDED_BROKER_DEFAULTS.concurrency,
    // Client ids are 1–64 characters (transport.ts); aedes' default 23 is MQTT 3.1's limit.
    maxClientsIdLength: 64,
    authenticate(client, _username, _password, done) {
      if (opts.tls === undefined || isTrusted(client)) return done(null, true);
      const socket = client.conn as TLSSocket;
      const cn = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
      const name = Array.isArray(cn) ? undefined : cn;
      const identity = name === undefined ? undefined : aclIdentity(name, coordinatorIdentity);
      const reason = !socket.authorized
        ? `client certificate refused: ${String(socket.authorizationError ?? 'none given')}`
        : identity === undefined
          ? `certificate CN '${String(cn)}' is not an icosfl identity`
          : client.id !== identity.name
            ? `client id '${client.id}' is not its certificate's CN '${identity.name}'`
            : null;
      if (reason === null) {
        identities.set(client, identity!);
        return done(null, true);
      }
      log.warn({ event: 'connection-refused', clientId: client.id, reason }, 'connection refused');
      done(Object.assign(new Error(reason), { returnCode: 5 }) as AuthenticateError, false);
    },
    authorizePublish(client, packet, cb) {
      const topic = packet.topic;
      const isTrustedClient = isTrusted(client);
      if (topic.startsWith('$')) return refusePublish(client, packet, '$ topics are reserved for the broker', cb);
      if (packet.retain && !isTrustedClient) return refusePublish(client, packet, 'only the coordinator publishes retained messages', cb);
      const acl = aclRefusal(client, (who) => mayPublish(who, topic, federation));
      if (acl !== null) return refusePublish(client, packet, acl, cb);
      if (authorize.publish && !authorize.publish(client?.id ?? '', topic, isTrustedClient)) return refusePublish(client, packet, 'not authorised', cb);
      cb(null);
    },
    authorizeSubscribe(client, sub: Subscription, cb) {
      const isTrustedClient = isTrusted(client);
      const refused = isForbiddenFilter(sub.topic)
        ? 'filter reaches $ or every topic'
        : (aclRefusal(client, (who) => maySubscribe(who, sub.topic, federation)) ??
          (authorize.subscribe && !authorize.subscribe(client.id, sub.topic, isTrustedClient) ? 'not authorised' : null));
      if (refused === null) return cb(null, sub);
      stats.refusedSubscriptions++;
      log.warn({ event: 'subscription-refused', clientId: client.id, filter: sub.topic, reason: refused }, 'subscription refused');
      cb(null, null); // SUBACK 128
    },
  });
  aedes.on('publish', (packet: AedesPublishPacket, client: Client | null) => {
    if (client === null || packet.topic.startsWith('$')) return;
    stats.published++;
    stats.publishedBytes += packet.payload.length;
  });
  aedes.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client.id, err }, 'client error'));
  aedes.on('connectionError', (_client: Client, err: Error) => log.debug({ err }, 'connection error'));

  // Every connection, so close() can end those that never sent CONNECT (aedes does not know them).
  const connections = new Set<Duplex | Socket>();
  const track = (conn: Duplex | Socket): void => {
    connections.add(conn);
    conn.once('close', () => connections.delete(conn));
  };
  const tls = opts.tls;
  const server: Server =
    tls === undefined
      ? createServer((socket) => {
          track(socket);
          aedes.handle(socket);
        })
      : // Not rejectUnauthorized: under TLS 1.3 Node then drops a certificate of another CA after
        // the handshake without an alert, and the client cannot tell why. A socket whose
        // certificate did not verify, or that has none, is refused at CONNECT instead (CONNACK 5,
        // authenticate above), before any publish or subscribe.
        createTlsServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, (socket) => aedes.handle(socket));
  if (tls !== undefined) {
    // The raw sockets, so close() also ends those still in (or stuck before) the handshake.
    server.on('connection', (socket: Socket) => track(socket));
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => log.warn({ event: 'tls-refused', remote: socket.remoteAddress, err: err.message }, 'TLS handshake refused'));
  }
  const listenHost = host === 'localhost' ? '127.0.0.1' : host;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    const code = (err as NodeJS.ErrnoException).code;
    const fix = code === 'EACCES' ? 'choose a port above 1023 or grant CAP_NET_BIND_SERVICE' : code === 'EADDRINUSE' ? 'choose another port or stop what holds it (ss -ltnp)' : 'check the host and port';
    throw new IcosflError('TRANSPORT_UNAVAILABLE', `embedded broker could not listen on ${listenHost}:${port}: ${errnoWords(err as NodeJS.ErrnoException)}; ${fix}`, { cause: err });
  }
  server.on('error', (err) => log.error({ err }, 'embedded broker server error'));
  const address = server.address() as AddressInfo;
  const url = `${tls === undefined ? 'mqtt' : 'mqtts'}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ url }, 'embedded broker listening');

  let closing: Promise<void> | null = null;
  return {
    url,
    port: address.port,
    trustedStream(): Duplex {
      if (closing !== null) throw new IcosflError('TRANSPORT_UNAVAILABLE', 'the embedded broker is closed');
      const [brokerSide, clientSide] = streamPair();
      trusted.add(brokerSide);
      track(brokerSide);
      aedes.handle(brokerSide);
      return clientSide;
    },
    stats(): EmbeddedBrokerStats {
      return { clients: aedes.connectedClients, ...stats };
    },
    close(): Promise<void> {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        for (const conn of connections) conn.destroy();
        await serverClosed;
        log.info({ url }, 'embedded broker closed');
      })();
      return closing;
    },
  };
}
