// Faults in a running federation of real processes (coordinator and agent daemons on GCD
// replays), each case its own federation:
// - an agent SIGKILLed while a round waits for it (embedded broker: the will is aedes', and the
//   coordinator's own broker is the zero-setup path most users run); it rejoins after a restart;
// - the coordinator SIGKILLed mid-round (Mosquitto: its persistent session queues what agents
//   publish while it is down, which the embedded broker, dying with it, cannot); the resumed
//   round's global is byte-identical to the sum the test computes from the updates it observed;
// - Mosquitto restarted mid-round without persistence (only an external broker can restart
//   under the coordinator); then, with it away, an agent stops cleanly on SIGTERM;
// - hostile bytes on the agents' topics from a raw MQTT client (Mosquitto: it takes anything, and
//   the persistent session shows nothing is redelivered after a restart).
// A round is held open by freezing one agent (SIGSTOP) after the others answered.
import { join } from 'node:path';
import { loadSigningKey } from '../../../common/crypto/signing-keys.js';
import { encodeForWire } from '../../../common/transport/messenger.js';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, aggregate } from '../../../common/crypto/index.js';
import { CHUNK_HEADER_BYTES, CHUNK_MAGIC, MAX_CHUNKS, splitMessage } from '../../../common/protocol/chunks.js';
import { modelParamCount, parseFederationModel } from '../../../common/protocol/federation-model.js';
import { encodeMessage, TYPE_CODES } from '../../../common/protocol/frame.js';
import { PROTOCOL_VERSION, type Update } from '../../../common/protocol/messages.js';
import { federationTopics } from '../../../common/protocol/topics.js';
import { MemoryBus } from '../../../common/transport/memory.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import { FederationCluster, METRICS } from '../../helpers/federation-cluster.js';
import { checkFedAvg, FederationObserver } from '../../helpers/federation-observer.js';
import { startMosquitto, type MosquittoBroker } from '../../helpers/mosquitto.js';
import { exitAfter, sleep, waitFor, within } from '../../helpers/wait.js';

exitAfter(178_000, 'federation/faults.test');

const logger = pino({ level: 'silent' });
const FAST = { reconnect: { minMs: 100, maxMs: 1000 } };
const ROUNDS = 2;
const MODEL = parseFederationModel({ metrics: METRICS, rounds: ROUNDS });
const PARAMS = modelParamCount(MODEL); // the layout does not depend on the round count

interface Rig {
  cluster: FederationCluster;
  observer: FederationObserver;
  mosquitto: MosquittoBroker | undefined;
}

/** A federation of `agents` processes, the observer connected before the first agent. */
async function rig(o: { agents: number; mosquitto: boolean; rounds?: number; federation?: Record<string, unknown> }): Promise<Rig> {
  const mosquitto = o.mosquitto ? await startMosquitto() : undefined;
  let cluster: FederationCluster | undefined;
  let observer: FederationObserver | undefined;
  try {
    cluster = await FederationCluster.create({ agents: o.agents, broker: mosquitto?.url ?? 'embedded', rounds: o.rounds ?? ROUNDS, intervalMs: 100, ...(o.federation ? { federation: o.federation } : {}) });
    await cluster.startCoordinator();
    observer = await FederationObserver.attach(await connectMqtt(cluster.brokerUrl, { clientId: 'observer', logger, ...FAST }), cluster.federation, logger);
    await cluster.startAgents();
    return { cluster, observer, mosquitto };
  } catch (err) {
    // A half-started federation is taken down here: the suite's after() never got it.
    if (cluster) (err as Error).message += `\n${cluster.dump()}`;
    await observer?.close();
    await cluster?.close();
    await mosquitto?.cleanup();
    throw err;
  }
}

async function closeRig(r: Rig | undefined): Promise<void> {
  if (!r) return;
  await r.observer.close();
  await r.cluster.close();
  await r.mosquitto?.cleanup();
}

/** Runs `fn`; on failure adds every process's last log lines to the message. */
async function explained<T>(r: Rig, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    (err as Error).message += `\n${r.cluster.dump()}`;
    throw err;
  }
}

const finalDone = (r: Rig, timeoutMs = 60_000) => r.cluster.waitForRound((x) => x.session === 1 && x.phase === 'final' && x.outcome === 'completed', timeoutMs, 'the final round to complete');

// ---------------------------------------------------------------------------------------------

const agentKill = suite('an agent SIGKILLed mid-round (embedded broker, 4 agents, quorum 3)');
{
  let r: Rig | undefined;
  // Held at FedAvg step 2 of 8; round_interval_s 2: the restarted agent (1–3 s to start, 10 s
  // seen on a loaded 2-core machine while it calibrates its backends) is back for a later step.
  agentKill.before(async () => {
    r = await rig({ agents: 4, mosquitto: false, rounds: 8, federation: { min_agents: 3, round_interval_s: 2, round_timeout_s: 60 } });
  });
  agentKill.after(() => closeRig(r));

  agentKill('the round completes with the quorum once the last will arrives; the agent rejoins after a restart', async () => {
    const { cluster, observer } = r!;
    await explained(r!, async () => {
      const held = await cluster.holdRound(3, 1);
      const killedAt = Date.now();
      await cluster.agent(3).kill();
      const done = await cluster.waitForRound((x) => x.round === held.round, 15_000, `round ${held.round} to end after agent-3 died`);
      assert.is(done.outcome, 'completed', done.reason ?? '');
      assert.is(done.participants, 3);
      assert.is(done.expected, 3, 'agent-3 left the expected set');
      // Long before the 60 s deadline: it was the will, not the clock.
      assert.ok(done.closedAt - killedAt < 10_000, `closed ${done.closedAt - killedAt} ms after the kill`);
      await cluster.coordinator.waitForLog('agent presence', { agent: 'agent-3', state: 'offline' }, 5000);
      // Same state directory, restarted at once (the next round is round_interval_s away); checked below.
      const restarting = cluster.startAgent(3);
      restarting.catch(() => undefined); // awaited below; a failure there must not be unhandled meanwhile
      assert.equal([...observer.roundUpdates(held.round).keys()].sort(), ['agent-0', 'agent-1', 'agent-2']);
      const cipher = await AgentCipher.create(cluster.agentBundle);
      const check = checkFedAvg(cipher, observer.roundUpdates(held.round), observer.roundGlobal(held.round), PARAMS);
      cipher.dispose();
      assert.ok(check.maxAbsDiff < 1e-4, `the 3-agent global is their FedAvg (|diff| ${check.maxAbsDiff})`);

      // It comes back, takes part in a later round and installs the final model.
      await restarting;
      const [first, second] = cluster.runs.get('agent-3')!;
      assert.ok(second, 'agent-3 ran twice');
      assert.is(second!.find('ready')[0]?.ring, first!.find('ready')[0]?.ring, 'on the same state directory (its ring)');
      const rejoined = await cluster.waitForRound((x) => x.round > held.round && x.phase === 'fedavg' && x.participants === 4, 40_000, 'a later FedAvg round with agent-3 back');
      assert.is(rejoined.outcome, 'completed');
      assert.equal([...observer.roundUpdates(rejoined.round).keys()].sort(), ['agent-0', 'agent-1', 'agent-2', 'agent-3']);
      const final = await finalDone(r!);
      assert.is(final.acks, 4, 'all four acknowledged the final global');
      await waitFor(async () => ((await cluster.agentStatus(3)).federation as { model: unknown }).model !== null, 10_000, 'agent-3 to report its federated model');
      const model = ((await cluster.agentStatus(3)).federation as { model: { round: number; metrics: string[] } }).model;
      assert.is(model.round, final.round);
      assert.equal(model.metrics, METRICS);
    });
  });
}
agentKill.run();

// ---------------------------------------------------------------------------------------------

const coordinatorKill = suite('the coordinator SIGKILLed mid-round (Mosquitto, persistent session)');
{
  let r: Rig | undefined;
  coordinatorKill.before(async () => {
    r = await rig({ agents: 3, mosquitto: true, federation: { round_interval_s: 1.5 } });
  });
  coordinatorKill.after(() => closeRig(r));

  coordinatorKill('it resumes the same round, and that round\'s global is byte-identical to the sum of the updates in agent-id order', async () => {
    const { cluster, observer } = r!;
    await explained(r!, async () => {
      const held = await cluster.holdRound(2, 1);
      await cluster.coordinator.waitForLog('update accepted', { agent: 'agent-1', round: held.round }, 5000);
      await cluster.coordinator.kill();
      // The frozen agent answers while no coordinator runs: Mosquitto queues it for the coordinator's session.
      cluster.agent(2).signal('SIGCONT');
      await waitFor(() => observer.updates.get(held.round)?.has('agent-2') === true, 20_000, 'agent-2 to publish its update while the coordinator is down');
      const duplicatesBefore = observer.stats().duplicates;

      const restarted = await cluster.startCoordinator();
      const resumed = await restarted.waitForLog('resuming round', {}, 10_000);
      assert.is(resumed.round, held.round, 'the same round id');
      assert.is(resumed.updates, 2, 'the journal kept the two updates accepted before the kill');
      const done = await cluster.waitForRound((x) => x.round === held.round, 30_000, `round ${held.round} to complete after the restart`);
      assert.is(done.outcome, 'completed', done.reason ?? '');
      assert.is(done.participants, 3);
      // Agent-2's update (queued by Mosquitto for the coordinator's session, or resent on the re-announcement) reached the new process.
      await restarted.waitForLog('update accepted', { agent: 'agent-2', round: held.round }, 5000);

      const updates = observer.roundUpdates(held.round); // throws if any agent sent two different updates
      assert.equal([...updates.keys()].sort(), ['agent-0', 'agent-1', 'agent-2']);
      // The re-announcement made agents 0 and 1 resend: the same bytes, so duplicates at the observer.
      await waitFor(() => observer.stats().duplicates > duplicatesBefore, 10_000, 'the resent updates to reach the observer');
      const expected = aggregate(cluster.coordinatorBundle, [...updates.keys()].sort().map((a) => updates.get(a)!.body), { paramCount: PARAMS });
      const published = observer.roundGlobal(held.round);
      assert.is(published.clients, 3);
      assert.ok(Buffer.from(published.body).equals(Buffer.from(expected)), `the global of round ${held.round} is byte-identical to aggregate(updates by agent id) (${published.body.length} vs ${expected.length} bytes)`);
      await finalDone(r!);
    });
  });
}
coordinatorKill.run();

// ---------------------------------------------------------------------------------------------

const brokerRestart = suite('Mosquitto restarted mid-round (same port, no persistence)');
{
  let r: Rig | undefined;
  brokerRestart.before(async () => {
    r = await rig({ agents: 3, mosquitto: true, federation: { round_interval_s: 1.5 } });
  });
  brokerRestart.after(() => closeRig(r));

  brokerRestart('everyone reconnects and the round completes', async () => {
    const { cluster, mosquitto } = r!;
    await explained(r!, async () => {
      const held = await cluster.holdRound(2, 1);
      await mosquitto!.stop();
      await mosquitto!.start();
      cluster.agent(2).signal('SIGCONT');
      // The new broker has no retained announcement: the coordinator publishes it again once it is back.
      await cluster.coordinator.waitForLog('broker reconnected; retained round state published again', { round: held.round }, 15_000);
      const done = await cluster.waitForRound((x) => x.round === held.round, 40_000, `round ${held.round} to end after the broker restart`);
      assert.is(done.outcome, 'completed', done.reason ?? '');
      assert.is(done.participants, 3);
      const final = await finalDone(r!);
      assert.is(final.acks, 3);
      const st = await cluster.status();
      assert.ok(st.broker!.connected && st.broker!.reconnects >= 1, `the coordinator reconnected (${JSON.stringify(st.broker)})`);
      for (let i = 0; i < 3; i++) {
        const f = (await cluster.agentStatus(i)).federation as { model: { round: number } | null };
        assert.is(f.model?.round, final.round, `agent-${i} installed the final model`);
      }
    });
  });

  brokerRestart('with the broker away, an agent still stops cleanly and at once on SIGTERM', async () => {
    const { cluster, mosquitto } = r!;
    await mosquitto!.stop();
    const agent = cluster.agent(0);
    await agent.waitForLog('broker connection lost', {}, 5000);
    const started = Date.now();
    agent.signal('SIGTERM');
    const exit = await within(agent.exited, 8000, 'agent-0 to exit after SIGTERM');
    const tookMs = Date.now() - started;
    assert.equal(exit, { code: 0, signal: null }, 'exit 0, not ended by its shutdown budget');
    assert.ok(tookMs < 3000, `stopped in ${tookMs} ms`);
    assert.is(agent.find('training job did not stop cleanly').length, 0, 'the federation job stopped within its 1.5 s');
    await mosquitto!.start(); // for the others' goodbyes in after()
  });
}
brokerRestart.run();

// ---------------------------------------------------------------------------------------------

/** An update for round `round` as agent `agent` would send it, with a body of `bodyBytes` random bytes. */
function fakeUpdate(federation: string, agent: string, round: number, bodyBytes = 64): Update {
  return { type: 'update', federation, agent, session: 1, round, phase: 'fedavg', samples: 1, windows: 1, codec: 'ckks', body: randomBytes(bodyBytes) };
}

/** A chunk header announcing a message larger than any limit, self-consistent otherwise. */
function oversizedChunk(): Uint8Array {
  const S = 1526;
  const length = MAX_CHUNKS * S; // 100 MB: over the 64 MiB update limit; (count − 1)·S < length
  const chunk = new Uint8Array(CHUNK_HEADER_BYTES + S);
  const v = new DataView(chunk.buffer);
  v.setUint32(0, CHUNK_MAGIC, true);
  v.setUint8(4, PROTOCOL_VERSION);
  v.setUint8(5, TYPE_CODES.update);
  v.setUint32(8, 0, true);
  v.setUint32(12, MAX_CHUNKS, true);
  v.setUint32(16, length, true);
  chunk.set(randomBytes(32), 20);
  return chunk;
}

/** Random bytes that cannot start with the chunk magic. */
function garbage(n: number): Uint8Array {
  const b = randomBytes(n);
  b[0] = 0x00;
  return b;
}

const hostile = suite('hostile input on the agents\' topics (Mosquitto, persistent session)');
{
  let r: Rig | undefined;
  let raw: MqttTransport | undefined;
  hostile.before(async () => {
    r = await rig({ agents: 3, mosquitto: true, federation: { round_interval_s: 1.5 } });
  });
  hostile.after(async () => {
    await raw?.close({ force: true }).catch(() => undefined);
    await closeRig(r);
  });

  const FLOOD = 200;
  /** Messenger-level rejections the coordinator must count, by reason. */
  const EXPECTED: Record<string, number> = { 'bad-magic': 1 + FLOOD, truncated: 1, 'unknown-version': 1, 'wrong-federation': 1, 'agent-mismatch': 1, oversized: 1 };
  /** Well-formed messages the round state refuses (status `rejected`, the reducer's reasons). */
  const REFUSED: Record<string, number> = { 'unknown-round': 1, 'bad-body': 1 };

  hostile('each is logged with its reason and counted; the round completes; nothing is redelivered after a restart', async () => {
    const { cluster } = r!;
    await explained(r!, async () => {
      const held = await cluster.holdRound(2, 1);
      const fed = cluster.federation;
      const topics = federationTopics(fed);
      raw = await connectMqtt(cluster.brokerUrl, { clientId: 'hostile', logger, ...FAST });
      const send = (topic: string, payload: Uint8Array) => raw!.publish(topic, payload, { qos: 1 });
      const asAgent0 = topics.update('agent-0');

      await send(asAgent0, garbage(300)); // malformed chunk bytes: bad-magic
      await send(asAgent0, new Uint8Array([1, 2, 3])); // shorter than a chunk header: truncated
      const v9 = encodeMessage(fakeUpdate(fed, 'agent-0', held.round));
      v9[4] = 9; // a frame of protocol version 9, in a well-formed chunk
      await send(asAgent0, splitMessage(v9)[0]!);
      for (const c of splitMessage(encodeMessage(fakeUpdate('other-federation', 'agent-0', held.round)))) await send(asAgent0, c);
      for (const c of splitMessage(encodeMessage(fakeUpdate(fed, 'agent-2', held.round)))) await send(asAgent0, c); // impersonation
      await send(asAgent0, oversizedChunk());
      // Well-formed messages the round state refuses: agent-0 for a round that does not exist, and
      // agent-2 on its own topic (no broker ACL here) for the held round, with a body that is no
      // CKKS update: refused, so it does not take the slot of the real agent-2's update. Signed
      // with the agents' own keys (a buggy agent, not a stranger: unsigned, the messenger refuses
      // them before the round state sees them).
      const keyOf = (i: number) => ({ id: `agent-${i}`, key: loadSigningKey(join(cluster.agents[i]!.dir, 'state', 'agent-signing.key')) });
      for (const c of splitMessage(encodeForWire(fakeUpdate(fed, 'agent-0', 999, 1000), keyOf(0), Date.now()))) await send(asAgent0, c);
      for (const c of splitMessage(encodeForWire(fakeUpdate(fed, 'agent-2', held.round, 1000), keyOf(2), Date.now()))) await send(topics.update('agent-2'), c);
      // Incomplete: the first chunk of a 2-chunk set only.
      const incomplete = splitMessage(encodeMessage(fakeUpdate(fed, 'agent-1', held.round, 300 * 1024)));
      assert.is(incomplete.length, 2);
      await send(topics.update('agent-1'), incomplete[0]!);
      for (let i = 0; i < FLOOD; i++) await send(topics.update(`agent-${i % 3}`), garbage(CHUNK_HEADER_BYTES + (i % 64)));

      let st = await cluster.status();
      const counted = () => Object.entries(EXPECTED).every(([k, n]) => (st.messenger!.rejected[k] ?? 0) >= n) && Object.entries(REFUSED).every(([k, n]) => (st.rejected[k] ?? 0) >= n);
      await waitFor(async () => counted() || ((st = await cluster.status()), counted()), 20_000, 'the coordinator to count every rejection', 100).catch((err: Error) => {
        throw new Error(`${err.message}: has ${JSON.stringify(st.messenger?.rejected)}, round state ${JSON.stringify(st.rejected)}`);
      });
      assert.equal(st.messenger!.rejected, EXPECTED, 'exactly these rejections, by reason');
      assert.equal(st.rejected, REFUSED, 'and these by the round state');
      assert.ok(st.round?.round === held.round && st.round.updates === 2, 'the refused agent-2 update took no slot');
      assert.ok(st.messenger!.pendingBytes >= incomplete[0]!.length - CHUNK_HEADER_BYTES, `the incomplete set is held (${st.messenger!.pendingBytes} bytes pending)`);
      const coordinator = cluster.coordinator;
      assert.ok(coordinator.running, 'the coordinator is still running');
      const rejectedLogs = coordinator.find('message rejected');
      for (const [reason, n] of Object.entries(EXPECTED)) assert.is(rejectedLogs.filter((l) => l.reason === reason).length, n, `log lines with reason ${reason}`);
      for (const [reason, n] of Object.entries(REFUSED)) assert.is(coordinator.logs.filter((l) => l.reason === reason).length, n, `log lines with reason ${reason}`);

      cluster.agent(2).signal('SIGCONT');
      const done = await cluster.waitForRound((x) => x.round === held.round, 30_000, `round ${held.round} to complete`);
      assert.is(done.outcome, 'completed', done.reason ?? '');
      assert.is(done.participants, 3);
      await finalDone(r!);

      // Every message was acknowledged once handled: a restart on the same session gets none of
      // them again, only the one sent while no coordinator ran (the session is kept: it is queued).
      await sleep(500);
      await coordinator.kill();
      await send(asAgent0, new Uint8Array([4, 5, 6]));
      const restarted = await cluster.startCoordinator();
      await restarted.waitForLog('message rejected', { reason: 'truncated' }, 10_000);
      await sleep(2000);
      assert.ok(restarted.running);
      assert.equal(restarted.find('message rejected').map((l) => l.reason), ['truncated'], 'only the message queued while it was down');
      for (const reason of Object.keys(REFUSED)) assert.is(restarted.logs.filter((l) => l.reason === reason).length, 0, `no ${reason} again`);
      const after = await cluster.status();
      assert.equal(after.messenger!.rejected, { truncated: 1 });
      assert.is(after.messenger!.pendingBytes, 0, 'the incomplete set\'s chunk was not delivered again either');
    });
  });

  hostile('an incomplete chunk set is freed after the assembler timeout', async () => {
    // The coordinator's timeout (120 s) has no setting; the same Messenger with a short one shows the freeing.
    const bus = new MemoryBus();
    const t = await bus.connect({ clientId: 'coordinator', logger });
    const m = new Messenger({ transport: t, federation: 'f', accept: new Set(['update']), logger, assembler: { timeoutMs: 300 } });
    try {
      await t.subscribe(m.topics.updateFilter);
      const sender = await bus.connect({ clientId: 'hostile', logger });
      const chunks = splitMessage(encodeMessage(fakeUpdate('f', 'a', 1, 300 * 1024)));
      await sender.publish(m.topics.update('a'), chunks[0]!);
      await waitFor(() => m.stats().pendingBytes > 0, 2000, 'the first chunk to be held');
      assert.is(m.expire(), 0, 'not before the timeout');
      await sleep(350);
      assert.is(m.expire(), 1);
      const s = m.stats();
      assert.is(s.pendingBytes, 0);
      assert.is(s.expiredSets, 1);
      assert.is(s.rejected.incomplete, 1);
      await sender.close();
    } finally {
      m.close();
      await t.close();
    }
  });
}
hostile.run();
