import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import type { InboundMessage } from '../../../common/transport/transport.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../coordinator/broker/embedded-broker.js';
import { exitAfter, sleep, waitFor, within } from '../../helpers/wait.js';

/**
 * The embedded broker's guards, each against a real MQTT 3.1.1 client over TCP (MqttTransport)
 * and the coordinator's in-process trusted connection.
 */
exitAfter(55_000, 'embedded-broker.test');
const WAIT_MS = 5000;
const QUIET_MS = 300;
const ROUND = 'icosfl/v1/x/round';
const FAST = { reconnect: { minMs: 50, maxMs: 400 }, connectTimeoutMs: 3000 };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (m: InboundMessage): string => new TextDecoder().decode(m.payload);

let broker: EmbeddedBroker;
const opened: MqttTransport[] = [];
const brokers: EmbeddedBroker[] = [];

async function client(clientId: string, extra: { trusted?: boolean; will?: { topic: string; payload: Uint8Array; retain?: boolean }; on?: EmbeddedBroker } = {}) {
  const b = extra.on ?? broker;
  const t = await connectMqtt(b.url, {
    ...FAST,
    clientId,
    ...(extra.will ? { will: extra.will } : {}),
    ...(extra.trusted ? { stream: () => b.trustedStream() } : {}),
  });
  opened.push(t);
  const messages: InboundMessage[] = [];
  const events: string[] = [];
  t.onMessage((m) => {
    messages.push(m);
  });
  t.on('connect', () => events.push('connect'));
  t.on('disconnect', () => events.push('disconnect'));
  return { t, messages, events };
}

test.before(async () => {
  broker = await startEmbeddedBroker();
  brokers.push(broker);
});
test.after.each(async () => {
  for (const t of opened.splice(0)) await within(t.close({ force: true }), WAIT_MS, `close of ${t.clientId}`);
});
test.after(async () => {
  for (const b of brokers) await b.close();
});

test('url and port: a loopback URL with the port it listens on', () => {
  assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
  assert.is(broker.url, `mqtt://127.0.0.1:${broker.port}`);
});

test('a publish to $SYS is refused: the publisher is dropped and aedes does not act on it', async () => {
  const victim = await client('victim');
  const attacker = await client('attacker');
  const refusedBefore = broker.stats().refusedPublishes;
  // aedes closes the client named in $SYS/<other broker>/new/clients: the hole the guard closes.
  await attacker.t.publish('$SYS/other-broker/new/clients', text('victim'), { qos: 0 });
  await waitFor(() => attacker.events.includes('disconnect'), WAIT_MS, 'the attacker to be dropped');
  await sleep(QUIET_MS);
  assert.equal(victim.events, [], 'the victim stays connected');
  assert.ok(victim.t.status().connected);
  assert.is(broker.stats().refusedPublishes, refusedBefore + 1);
});

test('a retained publish from an outside client is neither forwarded nor retained', async () => {
  const live = await client('live');
  await live.t.subscribe(ROUND);
  const outsider = await client('outsider');
  await outsider.t.publish(ROUND, text('forged'), { retain: true, qos: 0 });
  await waitFor(() => outsider.events.includes('disconnect'), WAIT_MS, 'the outsider to be dropped');
  const later = await client('later');
  await later.t.subscribe(ROUND);
  await sleep(QUIET_MS);
  assert.equal(live.messages, [], 'not forwarded to a live subscriber');
  assert.equal(later.messages, [], 'not retained for a later one');
});

test('a refused QoS 1 publish is never acknowledged; close() rejects it', async () => {
  const outsider = await client('outsider-qos1');
  const refusedBefore = broker.stats().refusedPublishes;
  let settled = false;
  const pending = outsider.t.publish(ROUND, text('forged'), { retain: true }).finally(() => (settled = true));
  pending.catch(() => {});
  await waitFor(() => outsider.events.includes('disconnect'), WAIT_MS, 'the outsider to be dropped');
  await sleep(QUIET_MS);
  assert.not.ok(settled, 'no PUBACK came');
  assert.ok(broker.stats().refusedPublishes > refusedBefore);
  await outsider.t.close({ force: true });
  const err = await pending.then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isIcosflError(err, 'TRANSPORT_UNAVAILABLE'), String(err));
});

test("the trusted connection's retained publish reaches live and later subscribers", async () => {
  const live = await client('live2');
  await live.t.subscribe(ROUND);
  const coordinator = await client('coordinator', { trusted: true });
  await coordinator.t.publish(ROUND, text('round 7'), { retain: true });
  await waitFor(() => live.messages.length === 1, WAIT_MS, 'the live copy');
  assert.equal([str(live.messages[0]!), live.messages[0]!.retained], ['round 7', false]);
  const later = await client('later2');
  await later.t.subscribe(ROUND);
  await waitFor(() => later.messages.length === 1, WAIT_MS, 'the retained copy');
  assert.equal([str(later.messages[0]!), later.messages[0]!.retained], ['round 7', true]);
  assert.equal(coordinator.events, [], 'the trusted connection stays up');
  await coordinator.t.publish(ROUND, new Uint8Array(0), { retain: true });
});

test('an outside client may not leave a retained will; a plain will is published', async () => {
  const watcher = await client('will-watcher');
  await watcher.t.subscribe('icosfl/v1/x/presence/+');
  const retainedWill = await client('agent-r', { will: { topic: 'icosfl/v1/x/presence/agent-r', payload: text('offline'), retain: true } });
  const plainWill = await client('agent-p', { will: { topic: 'icosfl/v1/x/presence/agent-p', payload: text('offline') } });
  await retainedWill.t.crash();
  await plainWill.t.crash();
  await waitFor(() => watcher.messages.length >= 1, WAIT_MS, 'the plain will');
  await sleep(QUIET_MS);
  assert.equal(
    watcher.messages.map((m) => m.topic),
    ['icosfl/v1/x/presence/agent-p'],
  );
});

test('subscriptions to #, +/#, $SYS/# and other wildcard roots are refused with SUBACK 128', async () => {
  const c = await client('sub-checker');
  const coordinator = await client('coordinator-subs', { trusted: true });
  const refusedBefore = broker.stats().refusedSubscriptions;
  const refused = ['#', '+/#', '$SYS/#', '$SYS/+/heartbeat', '+/v1/x/round'];
  for (const filter of refused) {
    const err = await c.t.subscribe(filter).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isIcosflError(err, 'TRANSPORT_UNAVAILABLE'), `${filter}: ${String(err)}`);
    assert.match((err as Error).message, /SUBACK 128/, filter);
  }
  const trustedErr = await coordinator.t.subscribe('#').then(
    () => null,
    (e: unknown) => e,
  );
  assert.match(String(trustedErr), /SUBACK 128/, 'the guard holds for the trusted connection too');
  assert.is(broker.stats().refusedSubscriptions, refusedBefore + refused.length + 1);
  await c.t.subscribe(ROUND);
  await c.t.subscribe('icosfl/v1/x/update/+');
  await coordinator.t.publish('icosfl/v1/x/update/a1', text('u'));
  await waitFor(() => c.messages.length === 1, WAIT_MS, 'a message on an allowed subscription');
  assert.equal(c.events, [], 'a refused subscription does not drop the client');
});

test('authorize hooks add ACLs after the guards', async () => {
  const seen: string[] = [];
  const acl = await startEmbeddedBroker({
    authorize: {
      publish: (clientId, topic, trusted) => (seen.push(`pub ${clientId} ${topic} ${trusted}`), !topic.endsWith('/forbidden')),
      subscribe: (clientId, filter, trusted) => (seen.push(`sub ${clientId} ${filter} ${trusted}`), trusted || !filter.includes('/update/')),
    },
  });
  brokers.push(acl);
  const agent = await client('agent-acl', { on: acl });
  const coordinator = await client('coordinator-acl', { trusted: true, on: acl });
  assert.match(String(await agent.t.subscribe('icosfl/v1/x/update/+').catch((e: unknown) => e)), /SUBACK 128/);
  await coordinator.t.subscribe('icosfl/v1/x/update/+');
  await agent.t.publish('icosfl/v1/x/update/agent-acl', text('ok'));
  await waitFor(() => coordinator.messages.length === 1, WAIT_MS, 'the allowed publish');
  await agent.t.publish('icosfl/v1/x/update/forbidden', text('no'), { qos: 0 });
  await waitFor(() => agent.events.includes('disconnect'), WAIT_MS, 'the refused publisher dropped');
  await sleep(QUIET_MS);
  assert.is(coordinator.messages.length, 1);
  assert.ok(seen.includes('pub agent-acl icosfl/v1/x/update/agent-acl false'));
  assert.ok(seen.includes('sub coordinator-acl icosfl/v1/x/update/+ true'));
  assert.is(acl.stats().refusedPublishes, 1);
});

test('stats() counts clients and publishes', async () => {
  const own = await startEmbeddedBroker();
  brokers.push(own);
  const a = await client('stats-a', { on: own });
  await client('stats-b', { on: own, trusted: true });
  await waitFor(() => own.stats().clients === 2, WAIT_MS, 'two clients');
  await a.t.publish('icosfl/v1/x/ack/stats-a', new Uint8Array(100));
  await waitFor(() => own.stats().published === 1, WAIT_MS, 'one publish');
  assert.equal(own.stats(), { clients: 2, published: 1, publishedBytes: 100, refusedPublishes: 0, refusedSubscriptions: 0 });
});

test('a non-loopback host or a bad port is refused', async () => {
  for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.org']) {
    const err = await startEmbeddedBroker({ host }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(err, RangeError, host);
    assert.match((err as Error).message, 'loopback');
  }
  for (const port of [-1, 65_536, 1.5]) {
    assert.instance(await startEmbeddedBroker({ port }).catch((e: unknown) => e), RangeError, String(port));
  }
});

test('close() disconnects clients and frees the port; a client comes back to a new broker there', async () => {
  const own = await startEmbeddedBroker();
  const port = own.port;
  const c = await client('survivor', { on: own });
  const inProcess = await client('in-process', { on: own, trusted: true });
  await c.t.subscribe(ROUND);
  await own.close();
  await waitFor(() => c.events.includes('disconnect'), WAIT_MS, 'the client to notice');
  // Its reconnection attempts now find trustedStream() refusing: an error, not a crash.
  await waitFor(() => /embedded broker is closed/.test(inProcess.t.status().lastError ?? ''), WAIT_MS, 'a failed in-process attempt');
  assert.equal(inProcess.events, ['disconnect']);
  assert.throws(() => own.trustedStream(), /closed/);
  await own.close(); // twice is fine
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
  const again = await startEmbeddedBroker({ port });
  brokers.push(again);
  assert.is(again.port, port);
  await waitFor(() => c.events.length >= 2, WAIT_MS, 'the client to reconnect');
  const coordinator = await client('coordinator-again', { trusted: true, on: again });
  await coordinator.t.publish(ROUND, text('after restart'));
  await waitFor(() => c.messages.length === 1, WAIT_MS, 'resubscribed after the restart');
});

test('after close() nothing is left running (no timers)', async () => {
  for (const t of opened.splice(0)) await t.close();
  for (const b of brokers) await b.close();
  await sleep(20);
  assert.equal(
    process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate'),
    [],
  );
});

test.run();
