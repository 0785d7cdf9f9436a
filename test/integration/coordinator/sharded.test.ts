// Sharded rounds over a real Mosquitto (docs/decisions.md D18): the round leader (the real
// RoundRunner with the CKKS strategy), aggregator workers (AggregatorWorker, each its own MQTT
// connection) and four in-test agents that encrypt real updates, publish them on their shard's
// topic and acknowledge the global. Everything is signed: agents with their own keys, the leader
// and the workers with the coordinator's. Cases: both workers up (the global is the weighted
// FedAvg of all four, summed as two partials); one worker down with the quorum still met by the
// other shard (the round completes at its deadline with that shard's agents only); one worker
// down below the quorum (abandoned). Then the CLI's refusals of a bad --shard and a mismatched S.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/index.js';
import { DEFAULT_FEDERATION_MODEL, modelParamCount } from '../../../common/protocol/federation-model.js';
import { ackFor, updateFor, type Announce, type Global, type Message } from '../../../common/protocol/messages.js';
import { shardOf } from '../../../common/protocol/shards.js';
import { COORDINATOR_SIGNER, generateSigningKey, type SignerKey } from '../../../common/protocol/signature.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import { AggregatorWorker } from '../../../coordinator/aggregator/worker.js';
import { MemoryJournal } from '../../../coordinator/round/journal.js';
import { RoundRunner } from '../../../coordinator/round/runner.js';
import { initialState, makeSettings, type RoundSummary } from '../../../coordinator/round/state.js';
import { ckksStrategy } from '../../../coordinator/strategy/aggregation.js';
import { startMosquitto, type MosquittoBroker } from '../../helpers/mosquitto.js';
import { DIST, tempDir } from '../../helpers/paths.js';
import { exitAfter, waitFor } from '../../helpers/wait.js';

exitAfter(170_000, 'coordinator/sharded.test');

const logger = pino({ level: 'silent' });
const FAST = { reconnect: { minMs: 100, maxMs: 1000 } };
const MODEL = { ...DEFAULT_FEDERATION_MODEL, rounds: 1, ridgeFeatures: 0 };
const PARAMS = modelParamCount(MODEL);
const SHARDS = 2;

let broker: MosquittoBroker;
let fed: { agent: AgentBundle; coordinator: CoordinatorBundle };
let cipher: AgentCipher;
const coordinatorKey = generateSigningKey();
/** Two agents of each shard, by the same rule the agents and workers apply. */
const AGENTS: string[] = [];

const S = suite('sharded rounds over Mosquitto');

S.before(async () => {
  broker = await startMosquitto();
  fed = await generateFederation({ federationId: 'sharded' });
  cipher = await AgentCipher.create(fed.agent);
  const per = [0, 0];
  for (let i = 0; AGENTS.length < 4 && i < 1000; i++) {
    const id = `edge-${i}`;
    const s = shardOf(id, SHARDS);
    if (per[s]! < 2) {
      per[s]!++;
      AGENTS.push(id);
    }
  }
  assert.is(AGENTS.length, 4);
});
S.after(async () => {
  cipher?.dispose();
  await broker?.cleanup();
});

interface Rig {
  runner: RoundRunner;
  leader: Messenger;
  workers: AggregatorWorker[];
  agents: { id: string; messenger: Messenger; transport: MqttTransport }[];
  transports: MqttTransport[];
  globals: Map<number, Global>;
  summaries: RoundSummary[];
  weights: Map<string, Float32Array>;
}

const samplesOf = (id: string) => 10 + AGENTS.indexOf(id) * 5;

/** The decrypted global is these agents' sample-weighted average, checked at every `stride`-th weight. */
function assertWeightedAverage(got: Float32Array, agents: readonly string[], weights: ReadonlyMap<string, Float32Array>, stride: number): void {
  const total = agents.reduce((a, id) => a + samplesOf(id), 0);
  for (let i = 0; i < PARAMS; i += stride) {
    const want = agents.reduce((a, id) => a + samplesOf(id) * weights.get(id)![i]!, 0) / total;
    assert.ok(Math.abs(got[i]! - want) < 1e-3, `weight ${i}: ${got[i]} vs ${want}`);
  }
}

async function rig(o: { federation: string; workers: number[]; minAgents: number; roundTimeoutMs: number }): Promise<Rig> {
  const agentKeys = new Map<string, KeyObject>(AGENTS.map((a) => [a, generateSigningKey()]));
  const coordinatorPub = createPublicKey(coordinatorKey);
  const keyOf = (id: string): SignerKey => {
    if (id === COORDINATOR_SIGNER) return { key: coordinatorPub };
    const k = agentKeys.get(id);
    return k ? { key: createPublicKey(k) } : { refused: 'unknown-signer', detail: `${id} is not enrolled` };
  };
  const transports: MqttTransport[] = [];
  const connect = async (clientId: string) => {
    const t = await connectMqtt(broker.url, { clientId: `${o.federation}-${clientId}`, logger, ...FAST });
    transports.push(t);
    return t;
  };
  // The federation id is the bundle's; each case runs its rounds on its own client ids and state.
  const federation = fed.coordinator.params.federationId;
  const settings = makeSettings({
    federation,
    codec: 'ckks',
    keyId: fed.coordinator.params.keyId,
    model: MODEL,
    minAgents: o.minAgents,
    maxRoundSamples: fed.coordinator.params.maxRoundSamples,
    shards: SHARDS,
    roundTimeoutMs: o.roundTimeoutMs,
    ackTimeoutMs: 10_000,
    roundIntervalMs: 100,
    sessionIntervalMs: 3_600_000,
    sessions: 1,
  });
  const leaderTransport = await connect('leader');
  const leader = new Messenger({ transport: leaderTransport, federation, accept: new Set(['update', 'ack', 'presence', 'partial']), logger, signer: { id: COORDINATOR_SIGNER, key: coordinatorKey }, keyOf });
  // The first announcement waits 1.5 s (a snapshot with nextAt ahead, as after a restart), so it
  // finds all four agents online and expects two on each shard whatever the quorum.
  const journal = new MemoryJournal();
  journal.checkpoint({ ...initialState(settings, Date.now()), nextAt: Date.now() + 1500 });
  const runner = new RoundRunner({ settings, messenger: leader, journal, strategy: ckksStrategy(fed.coordinator), logger, tickMs: 50 });
  const summaries: RoundSummary[] = [];
  runner.on('round', (s: RoundSummary) => summaries.push(s));
  await runner.start();
  for (const f of [leader.topics.updateFilter, leader.topics.ackFilter, leader.topics.presenceFilter, leader.topics.partialFilter]) await leaderTransport.subscribe(f);

  const workers: AggregatorWorker[] = [];
  for (const shard of o.workers) {
    const w = new AggregatorWorker({ shard, shards: SHARDS, transport: await connect(`worker-${shard}`), federation, bundleFor: (keyId) => (keyId === fed.coordinator.params.keyId ? fed.coordinator : undefined), logger, marginMs: 1_000, signer: { id: COORDINATOR_SIGNER, key: coordinatorKey }, keyOf, tickMs: 50 });
    await w.start();
    workers.push(w);
  }

  const globals = new Map<number, Global>();
  const weights = new Map<string, Float32Array>();
  const agents: Rig['agents'] = [];
  for (const [k, id] of AGENTS.entries()) {
    const transport = await connect(id);
    const messenger = new Messenger({ transport, federation, accept: new Set(['announce', 'global']), logger, signer: { id, key: agentKeys.get(id)! }, keyOf });
    const w = Float32Array.from({ length: PARAMS }, (_, i) => Math.sin(i + k) / 2);
    weights.set(id, w);
    const answered = new Set<number>();
    messenger.onMessage(async (m: Message) => {
      if (m.type === 'announce') {
        const a = m as Announce;
        if (a.phase === 'final' || answered.has(a.round)) return;
        answered.add(a.round);
        assert.equal(a.shards, [2, 2], 'the announcement names the shard count and the agents expected on each');
        const u = updateFor(a, id, { samples: samplesOf(id), windows: 100, body: cipher.encryptUpdate(w, samplesOf(id)), baseLoss: 0.9 });
        assert.is(u.shard, shardOf(id, SHARDS));
        await messenger.send(u);
      } else if (m.type === 'global' && m.body.length > 0) {
        if (k === 0) globals.set(m.round, m);
        await messenger.send(ackFor(m, id, { ok: true, loss: 0.8 }));
      }
    });
    for (const f of [messenger.topics.round, messenger.topics.globalFilter]) await transport.subscribe(f);
    agents.push({ id, messenger, transport });
  }
  // All at once, so the leader's announcement (on its next tick) and each worker find every agent online.
  await Promise.all(agents.map((a) => a.messenger.send({ type: 'presence', federation, agent: a.id, state: 'online', at: Date.now() })));
  return { runner, leader, workers, agents, transports, globals, summaries, weights };
}

async function close(r: Rig | undefined): Promise<void> {
  if (!r) return;
  await r.runner.stop();
  for (const w of r.workers) await w.stop();
  for (const a of r.agents) a.messenger.close();
  r.leader.close();
  for (const t of r.transports) await t.close();
}

/** Each case its own retained state: the broker keeps the previous case's announcement and global under the same federation. */
async function clearRetained(): Promise<void> {
  const t = await connectMqtt(broker.url, { clientId: 'cleaner', logger, ...FAST });
  const prefix = `icosfl/v1/${fed.coordinator.params.federationId}`;
  await t.publish(`${prefix}/round`, new Uint8Array(0), { retain: true, qos: 1 });
  for (let i = 0; i < 4; i++) await t.publish(`${prefix}/global/${i}`, new Uint8Array(0), { retain: true, qos: 1 });
  await t.close();
}

S('two workers: the global is the weighted FedAvg of all four agents, summed as two partial sums', async () => {
  await clearRetained();
  let r: Rig | undefined;
  try {
    r = await rig({ federation: 'both', workers: [0, 1], minAgents: 4, roundTimeoutMs: 30_000 });
    const rig_ = r;
    await waitFor(() => rig_.summaries.some((s) => s.phase === 'fedavg'), 60_000, 'the FedAvg round to end');
    const s = r.summaries.find((x) => x.phase === 'fedavg')!;
    assert.is(s.outcome, 'completed', s.reason ?? '');
    assert.is(s.participants, 4);
    assert.is(s.clients, 4);
    assert.is(s.totalSamples, AGENTS.reduce((a, id) => a + samplesOf(id), 0));
    assert.is(s.acks, 4);
    assert.is(r.leader.stats().received.partial, 2, 'one partial sum per shard');
    assert.is(r.leader.stats().received.update ?? 0, 0, 'no update reached the leader itself');
    for (const w of r.workers) assert.is(w.sent, 1);
    const g = r.globals.get(s.round)!;
    assert.ok(g, 'the agents received the global');
    const out = cipher.decryptAggregate(g.body, { paramCount: PARAMS });
    assert.is(out.clients, 4);
    assertWeightedAverage(out.weights, AGENTS, r.weights, 7);
  } finally {
    await close(r);
  }
});

S("a worker down, the quorum met by the other shard: the round completes at its deadline with that shard's agents", async () => {
  await clearRetained();
  let r: Rig | undefined;
  try {
    r = await rig({ federation: 'down-ok', workers: [0], minAgents: 2, roundTimeoutMs: 4_000 });
    const rig_ = r;
    await waitFor(() => rig_.summaries.some((s) => s.phase === 'fedavg'), 60_000, 'the FedAvg round to end');
    const s = r.summaries.find((x) => x.phase === 'fedavg')!;
    assert.is(s.outcome, 'completed', s.reason ?? '');
    assert.is(s.participants, 2);
    assert.is(s.clients, 2);
    const shard0 = AGENTS.filter((a) => shardOf(a, SHARDS) === 0);
    assert.is(s.totalSamples, shard0.reduce((a, id) => a + samplesOf(id), 0));
    const g = r.globals.get(s.round)!;
    const out = cipher.decryptAggregate(g.body, { paramCount: PARAMS });
    assertWeightedAverage(out.weights, shard0, r.weights, 11);
  } finally {
    await close(r);
  }
});

S('a worker down below the quorum: the round is abandoned at its deadline, saying how many updates came', async () => {
  await clearRetained();
  let r: Rig | undefined;
  try {
    r = await rig({ federation: 'down-abandoned', workers: [1], minAgents: 3, roundTimeoutMs: 4_000 });
    const rig_ = r;
    await waitFor(() => rig_.summaries.length > 0, 60_000, 'the first round to end');
    const s = r.summaries[0]!;
    assert.is(s.outcome, 'abandoned');
    assert.match(s.reason ?? '', /2 of the 3 updates the quorum needs arrived by the deadline/);
    assert.ok(r.workers[0]!.sent >= 1, 'the live worker sent its shard');
  } finally {
    await close(r);
  }
});

S('aggregate --shard: a malformed spec exits 64, a shard count other than federation.shards 78, naming the key', async () => {
  const { dir, cleanup } = tempDir('icosfl-sharded-cli-');
  try {
    const config = join(dir, 'coordinator.toml');
    writeFileSync(config, `[coordinator]\nstate_dir = "${dir}/state"\nruntime_dir = "${dir}/run"\ncodec = "plaintext"\n[federation]\nid = "x"\n[broker]\nurl = "${broker.url}"\n`);
    const cli = (args: string[]) => spawnSync(process.execPath, [join(DIST, 'coordinator', 'cli.js'), 'aggregate', ...args], { encoding: 'utf8', timeout: 20_000 });
    for (const bad of ['2/2', '1', 'x/y']) {
      const r = cli(['--shard', bad, '--config', config]);
      assert.is(r.status, 64, r.stderr);
      assert.match(r.stderr, /--shard '.*' is not K\/S with 0 ≤ K < S and 2 ≤ S ≤ 256/);
    }
    const none = cli(['--config', config]);
    assert.is(none.status, 64);
    assert.match(none.stderr, /--shard is required/);
    const mismatch = cli(['--shard', '0/4', '--config', config]);
    assert.is(mismatch.status, 78, mismatch.stderr);
    assert.match(mismatch.stderr, /federation\.shards .* is 0; run the workers with the leader's config/);
  } finally {
    cleanup();
  }
});

S.run();
