import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { MemoryBus, MemoryTransport } from '../../../common/transport/memory.js';
import { connectMqtt, MqttTransport } from '../../../common/transport/mqtt.js';
import type { InboundMessage, Transport, TransportOptions } from '../../../common/transport/transport.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../coordinator/broker/embedded-broker.js';
import { freePort, startMosquitto, type MosquittoBroker } from '../../helpers/mosquitto.js';
import { exitAfter, sleep, waitFor, within } from '../../helpers/wait.js';

/**
 * One behaviour suite run against every transport (as MQTT.js runs abstract_client.ts against
 * each of its transports): MemoryTransport, MqttTransport through the embedded aedes broker, and
 * MqttTransport through a real Mosquitto. Every wait is bounded.
 */

type AnyTransport = MemoryTransport | MqttTransport;
type ConnectOptions = Omit<TransportOptions, 'clientId'> & { clientId: string; trusted?: boolean };

interface Backend {
  name: string;
  /** Whether a bare `#` subscription is allowed (the embedded broker refuses it). */
  bareHash: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  endpoint(): string;
  /** `trusted`: the connection that may publish retained messages (the coordinator's). */
  connect(opts: ConnectOptions): Promise<AnyTransport>;
  crash(t: AnyTransport): Promise<void>;
  /** The network drops the connection; the transport comes back by itself (memory: by reconnect()). */
  networkLoss(t: AnyTransport): Promise<void>;
}

exitAfter(55_000, 'transport-suite.test');
const FAST = { reconnect: { minMs: 50, maxMs: 400 }, keepaliveS: 10, connectTimeoutMs: 3000 };
const WAIT_MS = 5000;
/** How long "nothing more arrives" is watched for. */
const QUIET_MS = 250;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (m: InboundMessage): string => new TextDecoder().decode(m.payload);

/** Collects what one transport receives. */
class Inbox {
  readonly messages: InboundMessage[] = [];
  constructor(t: Transport) {
    t.onMessage((m) => {
      this.messages.push(m);
    });
  }
  topics(): string[] {
    return this.messages.map((m) => m.topic);
  }
  texts(): string[] {
    return this.messages.map(str);
  }
  async count(n: number, what = `${n} messages`): Promise<void> {
    await waitFor(() => this.messages.length >= n, WAIT_MS, `${what} (have ${this.messages.length})`);
  }
  async has(topic: string): Promise<InboundMessage> {
    await waitFor(() => this.messages.some((m) => m.topic === topic), WAIT_MS, `a message on ${topic}`);
    return this.messages.find((m) => m.topic === topic)!;
  }
}

function captureLogger(): { logger: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, lines };
}

function memoryBackend(): Backend {
  let bus = new MemoryBus();
  return {
    name: 'memory',
    bareHash: true,
    async start() {
      bus = new MemoryBus();
    },
    async stop() {},
    endpoint: () => 'memory',
    connect: (opts) => bus.connect({ ...FAST, ...opts }),
    async crash(t) {
      (t as MemoryTransport).crash();
    },
    async networkLoss(t) {
      const m = t as MemoryTransport;
      m.disconnect();
      await sleep(20);
      await m.reconnect();
    },
  };
}

function mqttBackend(name: string, bareHash: boolean, broker: { start(): Promise<void>; stop(): Promise<void>; url(): string; trusted?: () => import('node:stream').Duplex }): Backend {
  return {
    name,
    bareHash,
    start: () => broker.start(),
    stop: () => broker.stop(),
    endpoint: () => broker.url(),
    connect: ({ trusted, ...opts }) =>
      connectMqtt(broker.url(), { ...FAST, ...opts, ...(trusted && broker.trusted ? { stream: broker.trusted } : {}) }),
    crash: (t) => (t as MqttTransport).crash(),
    async networkLoss(t) {
      (t as MqttTransport).dropConnection();
    },
  };
}

function aedesBackend(): Backend {
  let broker: EmbeddedBroker | null = null;
  return mqttBackend('aedes', false, {
    async start() {
      broker = await startEmbeddedBroker();
    },
    async stop() {
      await broker?.close();
      broker = null;
    },
    url: () => broker!.url,
    trusted: () => broker!.trustedStream(),
  });
}

let mosquitto: MosquittoBroker | null = null;
function mosquittoBackend(): Backend {
  return mqttBackend('mosquitto', true, {
    async start() {
      mosquitto = await startMosquitto();
    },
    async stop() {
      await mosquitto?.cleanup();
      mosquitto = null;
    },
    url: () => mosquitto!.url,
  });
}

function transportSuite(backend: Backend, extra?: (s: ReturnType<typeof suite>, h: Helpers) => void): void {
  const s = suite(`transport: ${backend.name}`);
  const opened: AnyTransport[] = [];
  const T = (t: string): string => `it/${backend.name}/${t}`;
  const connect = async (opts: ConnectOptions): Promise<AnyTransport> => {
    const t = await backend.connect({ ...opts, clientId: `${backend.name}-${opts.clientId}` });
    opened.push(t);
    return t;
  };
  const h: Helpers = { backend, T, connect };

  s.before(() => backend.start());
  s.after(() => backend.stop());
  s.after.each(async () => {
    for (const t of opened.splice(0)) await within(t.close(), WAIT_MS, `close of ${t.clientId}`);
  });

  s('QoS 1 round trip keeps bytes and publish order, 1 MiB and 0 bytes included', async () => {
    const a = await connect({ clientId: 'rt-a' });
    const b = await connect({ clientId: 'rt-b' });
    const inbox = new Inbox(b);
    await b.subscribe(T('rt/+'));
    const payloads = [new Uint8Array(0), randomBytes(1), randomBytes(1000), randomBytes(1 << 20), randomBytes(300_000), text('last')];
    await Promise.all(payloads.map((p, i) => a.publish(T(`rt/${i}`), p)));
    await inbox.count(payloads.length);
    assert.equal(inbox.topics(), payloads.map((_, i) => T(`rt/${i}`)));
    inbox.messages.forEach((m, i) => {
      assert.is(m.payload.length, payloads[i]!.length, `payload ${i} length`);
      assert.ok(Buffer.from(m.payload).equals(Buffer.from(payloads[i]!)), `payload ${i} bytes`);
      assert.is(m.retained, false);
    });
  });

  s('retained: delivered on subscribe, replaced by a newer one, deleted by an empty payload', async () => {
    const pub = await connect({ clientId: 'ret-pub', trusted: true });
    await pub.publish(T('ret/1'), text('A'), { retain: true });
    const s1 = await connect({ clientId: 'ret-s1' });
    const in1 = new Inbox(s1);
    await s1.subscribe(T('ret/1'));
    await in1.count(1, 'the retained A');
    assert.equal([str(in1.messages[0]!), in1.messages[0]!.retained], ['A', true]);

    await pub.publish(T('ret/1'), text('B'), { retain: true });
    await in1.count(2, 'B, live');
    assert.equal([str(in1.messages[1]!), in1.messages[1]!.retained], ['B', false], 'a live subscriber gets it unflagged');

    const s2 = await connect({ clientId: 'ret-s2' });
    const in2 = new Inbox(s2);
    await s2.subscribe(T('ret/1'));
    await in2.count(1, 'the retained B');
    await sleep(QUIET_MS);
    assert.equal(in2.messages.map((m) => [str(m), m.retained]), [['B', true]], 'only the newest retained payload');

    await pub.publish(T('ret/1'), new Uint8Array(0), { retain: true });
    await in1.count(3, 'the empty delete, live');
    assert.is(in1.messages[2]!.payload.length, 0);
    await pub.publish(T('ret/2'), text('marker'), { retain: true });
    const s3 = await connect({ clientId: 'ret-s3' });
    const in3 = new Inbox(s3);
    await s3.subscribe(T('ret/+'));
    await in3.has(T('ret/2'));
    await sleep(QUIET_MS);
    assert.equal(in3.topics(), [T('ret/2')], 'ret/1 was deleted');
    await pub.publish(T('ret/2'), new Uint8Array(0), { retain: true });
  });

  s('+ and # filters match per MQTT rules', async () => {
    const pub = await connect({ clientId: 'f-pub' });
    const plus = await connect({ clientId: 'f-plus' });
    const hash = await connect({ clientId: 'f-hash' });
    const inPlus = new Inbox(plus);
    const inHash = new Inbox(hash);
    await plus.subscribe(T('w/+/c'));
    await hash.subscribe(T('w/#'));
    let inAll: Inbox | null = null;
    if (backend.bareHash) {
      const all = await connect({ clientId: 'f-all' });
      inAll = new Inbox(all);
      await all.subscribe('#');
    }
    const topics = ['w/a/c', 'w/b/c', 'w/a/b/c', 'w', 'w/a', 'v/a/c', 'w/end/c'].map(T);
    for (const t of topics) await pub.publish(t, text(t));
    await inPlus.has(T('w/end/c'));
    await inHash.has(T('w/end/c'));
    if (inAll) await inAll.has(T('w/end/c'));
    await sleep(QUIET_MS);
    assert.equal(inPlus.topics(), ['w/a/c', 'w/b/c', 'w/end/c'].map(T));
    assert.equal(inHash.topics(), ['w/a/c', 'w/b/c', 'w/a/b/c', 'w', 'w/a', 'w/end/c'].map(T), "'w/#' matches 'w' itself too");
    if (inAll) assert.equal(inAll.topics().filter((t) => t.startsWith(T(''))), topics, 'bare # sees everything');
  });

  s('backpressure: the next message waits until the handler settled', async () => {
    const pub = await connect({ clientId: 'bp-pub' });
    const sub = await connect({ clientId: 'bp-sub' });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    sub.onMessage(async (m) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      seen.push(str(m));
      if (str(m) === 'first') await gate;
      await sleep(5);
      running--;
    });
    await sub.subscribe(T('bp'));
    for (const p of ['first', 'second', 'third']) await pub.publish(T('bp'), text(p));
    await waitFor(() => seen.length >= 1, WAIT_MS, 'the first message');
    await sleep(QUIET_MS);
    assert.equal(seen, ['first'], 'nothing else while the first handler runs');
    release();
    await waitFor(() => seen.length === 3, WAIT_MS, 'the rest');
    assert.equal(seen, ['first', 'second', 'third']);
    assert.is(maxRunning, 1, 'one handler at a time');
  });

  s('a throwing handler is logged at warn and later messages still arrive, without redelivery', async () => {
    const { logger, lines } = captureLogger();
    const pub = await connect({ clientId: 'th-pub' });
    const sub = await connect({ clientId: 'th-sub', logger });
    let bad = 0;
    const good: string[] = [];
    sub.onMessage((m) => {
      if (str(m) === 'bad') {
        bad++;
        throw new Error('boom');
      }
      good.push(str(m));
    });
    await sub.subscribe(T('th'));
    for (const p of ['bad', 'good1', 'good2']) await pub.publish(T('th'), text(p));
    await waitFor(() => good.length === 2, WAIT_MS, 'the good messages');
    await sleep(QUIET_MS);
    assert.equal(good, ['good1', 'good2']);
    assert.is(bad, 1, 'the failing message counts as handled');
    assert.is(sub.status().received, 3);
    const warn = lines.find((l) => l.msg === 'message handler failed');
    assert.ok(warn && warn.level === 40, 'logged at warn');
  });

  s('a handler may publish and subscribe and wait for both (no ack deadlock)', async () => {
    const client = await connect({ clientId: 'hp-client' });
    const server = await connect({ clientId: 'hp-server' });
    const inClient = new Inbox(client);
    const got: string[] = [];
    server.onMessage(async (m) => {
      got.push(m.topic);
      if (m.topic === T('hp/req')) {
        await server.subscribe(T('hp/later'));
        await server.publish(T('hp/reply'), text('reply to ' + str(m)));
      }
    });
    await server.subscribe(T('hp/req'));
    await client.subscribe(T('hp/reply'));
    await client.publish(T('hp/req'), text('ping'));
    const reply = await inClient.has(T('hp/reply'));
    assert.is(str(reply), 'reply to ping');
    await client.publish(T('hp/later'), text('x'));
    await waitFor(() => got.includes(T('hp/later')), WAIT_MS, 'the subscription made inside the handler');
  });

  s('the will is published on a crash, not on close() or close({force:true})', async () => {
    const watcher = await connect({ clientId: 'will-watch' });
    const inbox = new Inbox(watcher);
    await watcher.subscribe(T('will/+'));
    const will = (t: string) => ({ topic: T(`will/${t}`), payload: text(`${t} gone`) });
    const closed = await connect({ clientId: 'will-close', will: will('close') });
    const forced = await connect({ clientId: 'will-force', will: will('force') });
    const crashed = await connect({ clientId: 'will-crash', will: will('crash') });
    await closed.close();
    await forced.close({ force: true });
    await backend.crash(crashed);
    const m = await inbox.has(T('will/crash'));
    assert.is(str(m), 'crash gone');
    await sleep(QUIET_MS * 2);
    assert.equal(inbox.topics(), [T('will/crash')], 'no will after a clean or forced close');
  });

  s('a persistent session (clean:false) gets the QoS 1 messages sent while it was away', async () => {
    const first = await connect({ clientId: 'ps', clean: false });
    await first.subscribe(T('ps/t'));
    await first.close();
    const pub = await connect({ clientId: 'ps-pub' });
    for (const p of ['m0', 'm1', 'm2']) await pub.publish(T('ps/t'), text(p));
    const again = await connect({ clientId: 'ps', clean: false });
    const inbox = new Inbox(again);
    await inbox.count(3);
    assert.equal(inbox.texts(), ['m0', 'm1', 'm2']);
    await again.close();
    // A clean connection ends the session, so later tests on this broker start clean.
    await (await connect({ clientId: 'ps', clean: true })).close();
  });

  s('a message whose handler never settled is delivered again to the persistent session', async () => {
    const first = await connect({ clientId: 'unacked', clean: false });
    let started = 0;
    first.onMessage(() => {
      started++;
      return new Promise<void>(() => {}); // never settles: the process dies while handling it
    });
    await first.subscribe(T('ua/t'));
    const pub = await connect({ clientId: 'ua-pub' });
    await pub.publish(T('ua/t'), text('once'));
    await waitFor(() => started === 1, WAIT_MS, 'the first delivery');
    await backend.crash(first);
    const again = await connect({ clientId: 'unacked', clean: false });
    const inbox = new Inbox(again);
    await inbox.count(1, 'the redelivery');
    assert.is(str(inbox.messages[0]!), 'once');
    await again.close();
    await (await connect({ clientId: 'unacked', clean: true })).close();
  });

  s('network loss: disconnect and connect fire, subscriptions come back', async () => {
    const pub = await connect({ clientId: 'nl-pub' });
    const c = await connect({ clientId: 'nl-c' });
    const events: string[] = [];
    c.on('connect', () => events.push('connect'));
    c.on('disconnect', () => events.push('disconnect'));
    const inbox = new Inbox(c);
    await c.subscribe(T('nl/t'));
    await backend.networkLoss(c);
    await waitFor(() => events.length >= 2, WAIT_MS, `disconnect and connect (have ${events.join(',')})`);
    assert.equal(events, ['disconnect', 'connect']);
    await pub.publish(T('nl/t'), text('after'));
    await inbox.has(T('nl/t'));
    const st = c.status();
    assert.is(st.reconnects, 1);
    assert.ok(st.connected);
  });

  s('status() counts messages and bytes; endpoint has no credentials', async () => {
    const a = await connect({ clientId: 'st-a' });
    const b = await connect({ clientId: 'st-b' });
    const inbox = new Inbox(b);
    await b.subscribe(T('st'));
    const before = Date.now();
    await a.publish(T('st'), new Uint8Array(10));
    await a.publish(T('st'), new Uint8Array(20), { qos: 0 });
    await inbox.count(2);
    const sa = a.status();
    assert.equal([sa.sent, sa.bytesSent, sa.received, sa.bytesReceived], [2, 30, 0, 0]);
    assert.equal([sa.endpoint, sa.clientId, sa.connected, sa.reconnects, sa.lastError], [backend.endpoint(), `${backend.name}-st-a`, true, 0, null]);
    assert.ok(sa.connectedAt !== null && Date.parse(sa.connectedAt) <= before + 1000);
    const sb = b.status();
    assert.equal([sb.received, sb.bytesReceived, sb.sent], [2, 30, 0]);
    await a.close();
    assert.is(a.status().connected, false);
    await a.close(); // twice is fine
  });

  s('misuse throws TypeError/RangeError; a closed transport refuses with TRANSPORT_UNAVAILABLE', async () => {
    const t = await connect({ clientId: 'mis' });
    await rejectsWith(() => t.publish('a/+', text('x')), TypeError);
    await rejectsWith(() => t.publish('', text('x')), TypeError);
    await rejectsWith(() => t.publish('a', 'x' as unknown as Uint8Array), TypeError);
    await rejectsWith(() => t.publish('a', text('x'), { qos: 2 as 1 }), RangeError);
    await rejectsWith(() => t.subscribe('a/#/b'), TypeError);
    await rejectsWith(() => t.subscribe('a/b+'), TypeError);
    await rejectsWith(() => connect({ clientId: 'bad id!' }), RangeError);
    await rejectsWith(() => connect({ clientId: 'x', reconnect: { minMs: 100, maxMs: 10 } }), RangeError);
    assert.throws(() => t.on('bogus' as 'connect', () => {}), TypeError);
    await t.close();
    const err = await t.publish('a', text('x')).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isIcosflError(err, 'TRANSPORT_UNAVAILABLE'), String(err));
  });

  extra?.(s, h);

  s('after close() nothing is left running (no timers)', async () => {
    for (const t of opened.splice(0)) await t.close();
    await backend.stop();
    await sleep(20);
    const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate');
    assert.equal(timers, [], 'active timers');
  });

  s.run();
}

interface Helpers {
  backend: Backend;
  T(t: string): string;
  connect(opts: ConnectOptions): Promise<AnyTransport>;
}

async function rejectsWith(fn: () => Promise<unknown>, type: new (...args: never[]) => Error): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.instance(err, type);
    return;
  }
  assert.unreachable(`expected a ${type.name}`);
}

transportSuite(memoryBackend());
transportSuite(aedesBackend());
transportSuite(mosquittoBackend(), (s, { T, connect }) => {
  s('Mosquitto restarts mid-round: the client reconnects with backoff and gets later messages', async () => {
    const c = (await connect({ clientId: 'rs-c', reconnect: { minMs: 50, maxMs: 800 } })) as MqttTransport;
    const pub = (await connect({ clientId: 'rs-pub', reconnect: { minMs: 50, maxMs: 800 } })) as MqttTransport;
    const events: string[] = [];
    c.on('connect', () => events.push('connect'));
    c.on('disconnect', () => events.push('disconnect'));
    const inbox = new Inbox(c);
    await c.subscribe(T('rs/t'));
    await pub.publish(T('rs/t'), text('before'));
    await inbox.has(T('rs/t'));

    await mosquitto!.stop();
    await waitFor(() => events.includes('disconnect'), WAIT_MS, 'disconnect');
    const offline = pub.publish(T('rs/t'), text('sent while down'));
    await sleep(700);
    assert.ok(c.reconnectDelayMs > 50, `the delay grew (${c.reconnectDelayMs} ms)`);
    assert.ok(c.reconnectDelayMs <= 800);
    assert.not.ok(c.status().connected);
    assert.match(c.status().lastError ?? '', /ECONNREFUSED/);

    await mosquitto!.start();
    await waitFor(() => events.length >= 2, WAIT_MS, "'connect' after the restart");
    assert.equal(events, ['disconnect', 'connect']);
    assert.is(c.reconnectDelayMs, 50, 'backoff reset on connect');
    await within(offline, WAIT_MS, 'the PUBACK of the publish made while the broker was down');
    await waitFor(() => pub.status().connected, WAIT_MS, 'the publisher back');
    await pub.publish(T('rs/t'), text('after'));
    await waitFor(() => inbox.texts().includes('after'), WAIT_MS, 'a message after the restart');
    assert.is(c.status().reconnects, 1);
  });

  s('connectMqtt: an unreachable broker fails with TRANSPORT_UNAVAILABLE after connectTimeoutMs, credentials hidden', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await connectMqtt(`mqtt://agent:s3cret@127.0.0.1:${port}`, { clientId: 'nobody', connectTimeoutMs: 400, reconnect: { minMs: 50, maxMs: 100 } }).then(
      () => null,
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    assert.ok(isIcosflError(err, 'TRANSPORT_UNAVAILABLE'), String(err));
    const message = (err as Error).message;
    assert.match(message, `mqtt://127.0.0.1:${port}`);
    assert.match(message, /ECONNREFUSED/);
    assert.not.match(message, 's3cret');
    assert.ok(took >= 350 && took < 3000, `took ${took} ms`);
  });

  s('connectMqtt: a broker refusing the connection fails at once (not authorised, exit 77), not after connectTimeoutMs', async () => {
    const closed = await startMosquitto({ extraConfig: ['allow_anonymous false'] });
    try {
      const started = Date.now();
      const err = await connectMqtt(closed.url, { clientId: 'anon', connectTimeoutMs: 5000 }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(isIcosflError(err, 'TRANSPORT_NOT_AUTHORISED'), String(err));
      assert.match((err as Error).message, /refused the connection: Connection refused: Not authorized: the broker does not accept an anonymous client/);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally {
      await closed.cleanup();
    }
  });

  s('connectMqtt: credentials in the URL are sent and hidden from status()', async () => {
    const t = await connectMqtt(`mqtt://agent:s3cret@127.0.0.1:${mosquitto!.port}`, { ...FAST, clientId: 'creds' });
    assert.is(t.status().endpoint, `mqtt://127.0.0.1:${mosquitto!.port}`);
    await t.close();
  });
});
