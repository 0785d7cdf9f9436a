// The federation ACL and mutual TLS, one suite run against both brokers: a real Mosquitto with
// deploy/mosquitto/icosfl.conf and its acl file, and the embedded aedes broker with tls. Every
// certificate is made by scripts/gen-certs.sh. Each denial is checked beside an allowed message
// sent after it, so a broker that dropped everything would fail too.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { federationTopics } from '../../../common/protocol/topics.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import { loadBrokerCredentials, loadServerMaterial, type TlsClientOptions } from '../../../common/transport/tls-credentials.js';
import type { InboundMessage } from '../../../common/transport/transport.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../coordinator/broker/embedded-broker.js';
import { makeCerts, MOSQUITTO_ACL, shippedMosquittoConfig, type FederationCerts } from '../../helpers/certs.js';
import { startMosquitto, type MosquittoBroker } from '../../helpers/mosquitto.js';
import { tempDir } from '../../helpers/paths.js';
import { exitAfter, sleep, waitFor, within } from '../../helpers/wait.js';

exitAfter(90_000, 'broker-acl.test');
const WAIT_MS = 5000;
const QUIET_MS = 400;
const FAST = { reconnect: { minMs: 100, maxMs: 400 }, connectTimeoutMs: 4000 };
const T = federationTopics('fed');
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (m: InboundMessage): string => new TextDecoder().decode(m.payload);

const { dir, cleanup } = tempDir('icosfl-acl-');
const certs: FederationCerts = makeCerts(join(dir, 'ok'), ['agent-a', 'agent-b']);
// Same names, another CA: what an attacker who runs gen-certs.sh themselves holds.
const rogue: FederationCerts = makeCerts(join(dir, 'rogue'), ['agent-a']);
const noLabel = (k: string) => k;

function tlsOf(c: FederationCerts, who: { cert: string; key: string } | null, ca = c.ca): TlsClientOptions {
  return loadBrokerCredentials({ ca, cert: who?.cert ?? '', key: who?.key ?? '', username: '', password_file: '' }, noLabel).tls!;
}

interface Peer {
  t: MqttTransport;
  messages: InboundMessage[];
  events: string[];
  texts(topic?: string): string[];
}

interface BrokerUnderTest {
  url: string;
  /** The coordinator's connection: its certificate (Mosquitto) or the trusted in-process stream (embedded). */
  coordinator(clientId?: string): Promise<MqttTransport>;
  close(): Promise<void>;
}

function aclSuite(name: string, open: () => Promise<BrokerUnderTest>) {
  const s = suite(name);
  let broker: BrokerUnderTest;
  const opened: MqttTransport[] = [];

  const peer = async (t: MqttTransport): Promise<Peer> => {
    opened.push(t);
    const messages: InboundMessage[] = [];
    const events: string[] = [];
    t.onMessage((m) => void messages.push(m));
    t.on('connect', () => events.push('connect'));
    t.on('disconnect', () => events.push('disconnect'));
    return { t, messages, events, texts: (topic) => messages.filter((m) => topic === undefined || m.topic === topic).map(str) };
  };
  const agent = async (id: string, opts: { clientId?: string; will?: boolean } = {}) =>
    peer(
      await connectMqtt(broker.url, {
        ...FAST,
        clientId: opts.clientId ?? id,
        tls: tlsOf(certs, certs.agent(id)),
        ...(opts.will ? { will: { topic: T.presence(id), payload: text(`${id} gone`) } } : {}),
      }),
    );
  const coordinator = async () => peer(await broker.coordinator());

  s.before(async () => {
    broker = await open();
  });
  s.after.each(async () => {
    for (const t of opened.splice(0)) await within(t.close({ force: true }), WAIT_MS, `close of ${t.clientId}`);
  });
  s.after(async () => {
    await broker?.close();
  });

  s('allowed: an agent publishes its own update, ack and presence; reads the retained round and the global', async () => {
    const c = await coordinator();
    for (const f of [T.updateFilter, T.ackFilter, T.presenceFilter]) await c.t.subscribe(f);
    await c.t.publish(T.round, text('round 1'), { retain: true });
    await c.t.publish(T.global(0), text('global 0'), { retain: true });
    const a = await agent('agent-a');
    await a.t.subscribe(T.round);
    await a.t.subscribe(T.globalFilter);
    await waitFor(() => a.messages.length === 2, WAIT_MS, 'the retained round and global');
    assert.equal(a.texts(T.round), ['round 1']);
    assert.equal(a.texts(T.global(0)), ['global 0']);
    await a.t.publish(T.update('agent-a'), text('update a'));
    await a.t.publish(T.ack('agent-a'), text('ack a'));
    await a.t.publish(T.presence('agent-a'), text('here a'));
    await waitFor(() => c.messages.length === 3, WAIT_MS, 'the agent\'s three messages at the coordinator');
    assert.equal(c.messages.map((m) => m.topic), [T.update('agent-a'), T.ack('agent-a'), T.presence('agent-a')]);
  });

  s("denied: subscribing to another agent's update topic receives nothing", async () => {
    const c = await coordinator();
    await c.t.subscribe(T.updateFilter);
    const b = await agent('agent-b');
    // Mosquitto 2.0 grants the SUBACK and filters each message by the read ACL; the embedded broker answers 128.
    const refused = await b.t.subscribe(T.update('agent-a')).then(
      () => false,
      () => true,
    );
    await b.t.subscribe(T.updateFilter).catch(() => undefined);
    const a = await agent('agent-a');
    await a.t.publish(T.update('agent-a'), text('secret update'));
    await waitFor(() => c.texts().includes('secret update'), WAIT_MS, 'the update at the coordinator');
    await sleep(QUIET_MS);
    assert.equal(b.messages, [], `agent-b received another agent's update (subscription refused: ${refused})`);
  });

  s("denied: publishing on another agent's topics (update, presence) is not delivered", async () => {
    const c = await coordinator();
    await c.t.subscribe(T.updateFilter);
    await c.t.subscribe(T.presenceFilter);
    const b = await agent('agent-b');
    // Mosquitto acknowledges and drops; the embedded broker drops the connection (both: not delivered).
    await b.t.publish(T.update('agent-a'), text('forged update'), { qos: 0 });
    await b.t.publish(T.presence('agent-a'), text('forged presence'), { qos: 0 });
    const a = await agent('agent-a');
    await a.t.publish(T.update('agent-a'), text('real update'));
    await waitFor(() => c.texts().includes('real update'), WAIT_MS, 'the real update');
    await sleep(QUIET_MS);
    assert.equal(c.texts(), ['real update']);
  });

  s('denied: an agent cannot publish a round or a global, retained or not', async () => {
    const c = await coordinator();
    await c.t.publish(T.round, text('true round'), { retain: true });
    const a = await agent('agent-a');
    await a.t.subscribe(T.round);
    await waitFor(() => a.texts(T.round).includes('true round'), WAIT_MS, 'the true round');
    const b = await agent('agent-b');
    await b.t.publish(T.round, text('forged round'), { retain: true, qos: 0 });
    await b.t.publish(T.global(0), text('forged global'), { retain: true, qos: 0 });
    await sleep(QUIET_MS);
    const later = await agent('agent-a', { clientId: 'agent-a' });
    await later.t.subscribe(T.round);
    await later.t.subscribe(T.globalFilter);
    await c.t.publish(T.round, text('next round'), { retain: true });
    await waitFor(() => later.texts(T.round).includes('next round'), WAIT_MS, 'the next round at a later subscriber');
    assert.not.ok(later.texts().some((m) => m.startsWith('forged')), `forged message retained: ${later.texts().join(', ')}`);
    assert.not.ok(a.texts().some((m) => m.startsWith('forged')), 'forged message delivered');
  });

  s("denied: '#' gets nothing of other agents, '$SYS/#' nothing at all", async () => {
    const c = await coordinator();
    await c.t.subscribe(T.updateFilter);
    const b = await agent('agent-b');
    const hash = await b.t.subscribe('#').then(
      () => 'granted',
      () => 'refused',
    );
    const sys = await b.t.subscribe('$SYS/#').then(
      () => 'granted',
      () => 'refused',
    );
    const a = await agent('agent-a');
    await a.t.publish(T.update('agent-a'), text('update for the coordinator'));
    await a.t.publish(T.presence('agent-a'), text('presence a'));
    await waitFor(() => c.texts().includes('update for the coordinator'), WAIT_MS, 'the update at the coordinator');
    await sleep(QUIET_MS);
    const leaked = b.messages.filter((m) => m.topic.includes('agent-a') || m.topic.startsWith('$'));
    assert.equal(leaked.map((m) => m.topic), [], `'#' ${hash}, '$SYS/#' ${sys}`);
  });

  s("wills: an agent's will on its own presence topic is delivered, one on another agent's is not", async () => {
    const c = await coordinator();
    await c.t.subscribe(T.presenceFilter);
    // Mosquitto 2.0 checks the will against the ACL at CONNECT and refuses the connection; the embedded broker drops the will.
    const forger = await connectMqtt(broker.url, { ...FAST, clientId: 'agent-b', tls: tlsOf(certs, certs.agent('agent-b')), will: { topic: T.presence('agent-a'), payload: text('forged will') } }).then(
      (t) => t,
      () => null,
    );
    await forger?.crash();
    const a = await connectMqtt(broker.url, { ...FAST, clientId: 'agent-a', tls: tlsOf(certs, certs.agent('agent-a')), will: { topic: T.presence('agent-a'), payload: text('own will') } });
    await a.crash();
    await waitFor(() => c.texts().includes('own will'), WAIT_MS, "agent-a's will");
    await sleep(QUIET_MS);
    assert.equal(c.texts(), ['own will']);
  });

  s('denied: a client without a certificate cannot connect', async () => {
    const err = await connectMqtt(broker.url, { ...FAST, clientId: 'agent-a', tls: tlsOf(certs, null) }).then(
      (t) => (opened.push(t), null),
      (e: unknown) => e,
    );
    // Mosquitto fails the handshake (TLS alert 116), the embedded broker answers CONNACK 5: both NO_PERMISSION.
    assert.ok(isIcosflError(err, 'TRANSPORT_NOT_AUTHORISED'), String(err));
  });

  s('denied: a certificate from another CA is refused (NO_PERMISSION), naming the certificate', async () => {
    const err = await connectMqtt(broker.url, { ...FAST, clientId: 'agent-a', tls: tlsOf(rogue, rogue.agent('agent-a'), certs.ca) }).then(
      (t) => (opened.push(t), null),
      (e: unknown) => e,
    );
    assert.ok(isIcosflError(err, 'TRANSPORT_NOT_AUTHORISED'), String(err));
    assert.match((err as Error).message, rogue.agent('agent-a').cert);
  });

  s("the broker's certificate must verify against the configured CA: another CA is TRANSPORT_TLS_UNTRUSTED naming the CA file", async () => {
    const started = Date.now();
    const err = await connectMqtt(broker.url, { ...FAST, clientId: 'agent-a', tls: tlsOf(certs, certs.agent('agent-a'), rogue.ca) }).then(
      (t) => (opened.push(t), null),
      (e: unknown) => e,
    );
    assert.ok(isIcosflError(err, 'TRANSPORT_TLS_UNTRUSTED'), String(err));
    assert.match((err as Error).message, `the CA file ${rogue.ca}`);
    assert.ok(Date.now() - started < FAST.connectTimeoutMs, 'fails at once, not after the connect timeout');
  });

  return s;
}

aclSuite('mosquitto (deploy/mosquitto/icosfl.conf)', async () => {
  const m: MosquittoBroker = await startMosquitto({ tls: true, listenerConfig: (port) => shippedMosquittoConfig(port, certs.dir) });
  return {
    url: m.url,
    coordinator: () => connectMqtt(m.url, { ...FAST, clientId: 'icosfl-coordinator', tls: tlsOf(certs, certs.coordinator) }),
    close: () => m.cleanup(),
  };
}).run();

let embedded: EmbeddedBroker;
const serverTls = () => loadServerMaterial({ ca: certs.ca, cert: certs.broker.cert, key: certs.broker.key }, noLabel).material;
const embeddedSuite = aclSuite('embedded broker (tls)', async () => {
  embedded = await startEmbeddedBroker({ tls: serverTls() });
  return {
    url: embedded.url,
    coordinator: () => connectMqtt(embedded.url, { ...FAST, clientId: 'icosfl-coordinator', stream: () => embedded.trustedStream() }),
    close: () => embedded.close(),
  };
});

embeddedSuite('embedded: a client id other than the certificate CN is refused (no session takeover)', async () => {
  assert.match(embedded.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  const victim = await connectMqtt(embedded.url, { ...FAST, clientId: 'agent-a', tls: tlsOf(certs, certs.agent('agent-a')) });
  try {
    const events: string[] = [];
    victim.on('disconnect', () => events.push('disconnect'));
    const err = await connectMqtt(embedded.url, { ...FAST, clientId: 'agent-a', tls: tlsOf(certs, certs.agent('agent-b')) }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isIcosflError(err, 'TRANSPORT_NOT_AUTHORISED'), String(err));
    await sleep(QUIET_MS);
    assert.equal(events, [], 'the victim stays connected');
  } finally {
    await victim.close({ force: true });
  }
});

embeddedSuite("embedded: a broker on an address its certificate does not name is TRANSPORT_TLS_UNTRUSTED, saying which name", async () => {
  // 127.0.0.2 is loopback too, but gen-certs.sh put only localhost and 127.0.0.1 in the SAN.
  const other = await startEmbeddedBroker({ host: '127.0.0.2', tls: serverTls() });
  try {
    const err = await connectMqtt(other.url, { ...FAST, clientId: 'agent-a', tls: tlsOf(certs, certs.agent('agent-a')) }).then(
      (t) => t.close({ force: true }).then(() => null),
      (e: unknown) => e,
    );
    assert.ok(isIcosflError(err, 'TRANSPORT_TLS_UNTRUSTED'), String(err));
    assert.match((err as Error).message, /must name '127\.0\.0\.2'/);
  } finally {
    await other.close();
  }
});

embeddedSuite.run();

// Username and password (a password file, over TLS without a client certificate): the ACL then keys on the username.
const passwords = suite('mosquitto: username and password');
let pwBroker: MosquittoBroker;
passwords.before(async () => {
  const pwFile = join(dir, 'passwords');
  execFileSync('mosquitto_passwd', ['-b', '-c', pwFile, 'agent-a', 'right-password'], { stdio: 'ignore', timeout: 10_000 });
  execFileSync('mosquitto_passwd', ['-b', pwFile, 'icosfl-coordinator', 'coordinator-password'], { stdio: 'ignore', timeout: 10_000 });
  writeFileSync(join(dir, 'agent-a.password'), 'right-password\n', { mode: 0o600 });
  writeFileSync(join(dir, 'wrong.password'), 'wrong-password\n', { mode: 0o600 });
  pwBroker = await startMosquitto({
    tls: true,
    listenerConfig: (port) => [
      'per_listener_settings false',
      'allow_anonymous false',
      `password_file ${pwFile}`,
      `acl_file ${MOSQUITTO_ACL}`,
      `listener ${port} 127.0.0.1`,
      `cafile ${certs.ca}`,
      `certfile ${certs.broker.cert}`,
      `keyfile ${certs.broker.key}`,
    ],
  });
});
passwords.after(async () => {
  await pwBroker?.cleanup();
  cleanup();
});

passwords('right password: connects, and the ACL confines the agent by its username', async () => {
  const coordinator = await connectMqtt(pwBroker.url, { ...FAST, clientId: 'coordinator', tls: tlsOf(certs, null), username: 'icosfl-coordinator', password: 'coordinator-password' });
  const creds = loadBrokerCredentials({ ca: certs.ca, cert: '', key: '', username: 'agent-a', password_file: join(dir, 'agent-a.password') }, noLabel);
  assert.equal(creds.warnings, []);
  const a = await connectMqtt(pwBroker.url, { ...FAST, clientId: 'agent-a', tls: creds.tls!, username: creds.username!, password: creds.password! });
  try {
    const got: string[] = [];
    coordinator.onMessage((m) => void got.push(`${m.topic} ${str(m)}`));
    await coordinator.subscribe(T.updateFilter);
    await a.publish(T.update('agent-b'), text('forged'), { qos: 0 });
    await a.publish(T.update('agent-a'), text('own'));
    await waitFor(() => got.length === 1, WAIT_MS, 'the own update');
    await sleep(QUIET_MS);
    assert.equal(got, [`${T.update('agent-a')} own`]);
  } finally {
    await a.close({ force: true });
    await coordinator.close({ force: true });
  }
});

passwords('wrong password: TRANSPORT_NOT_AUTHORISED (exit 77) naming the username, not the password', async () => {
  const creds = loadBrokerCredentials({ ca: certs.ca, cert: '', key: '', username: 'agent-a', password_file: join(dir, 'wrong.password') }, noLabel);
  const err = await connectMqtt(pwBroker.url, { ...FAST, clientId: 'agent-a', tls: creds.tls!, username: creds.username!, password: creds.password! }).then(
    (t) => t.close({ force: true }).then(() => null),
    (e: unknown) => e,
  );
  assert.ok(isIcosflError(err, 'TRANSPORT_NOT_AUTHORISED'), String(err));
  assert.match((err as Error).message, /username 'agent-a'/);
  assert.not.match((err as Error).message, /wrong-password/);
});

passwords.run();
