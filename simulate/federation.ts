import { COORDINATOR_SIGNER, generateSigningKey, type SignerKey } from '../common/protocol/signature.js';
import type { AgentBundle, CoordinatorBundle } from '../common/crypto/index.js';
import { AgentCipher } from '../common/crypto/index.js';
import type { Logger } from '../common/log.js';
import type { FederationModel } from '../common/protocol/federation-model.js';
import { Messenger } from '../common/transport/messenger.js';
import { MemoryBus } from '../common/transport/memory.js';
import type { Transport } from '../common/transport/transport.js';
import { FederationClient } from '../agent/federation/client.js';
import { ckksCodec, plaintextCodec, sharedDecodings, type AgentCodec } from '../agent/federation/codec.js';
import { createEngines, type Engines } from '../agent/federation/engines.js';
import type { FederatedModel } from '../agent/federation/federated-model.js';
import { Participant, type ParticipantData } from '../agent/federation/participant.js';
import { memoryAccountantStore, UpdatePrivacy, type PrivacySettings } from '../agent/federation/privacy.js';
import { MemoryJournal } from '../coordinator/round/journal.js';
import { RoundRunner } from '../coordinator/round/runner.js';
import { makeSettings, type RoundSummary } from '../coordinator/round/state.js';
import { ckksStrategy, plaintextStrategy } from '../coordinator/strategy/aggregation.js';

/**
 * A whole federation in one process: the coordinator's round runner and every agent's
 * participant and client, the same code the daemons run, over one transport: the in-memory bus
 * (default) or MQTT through the embedded broker. The agents share one set of engines (one tfjs
 * model each; work on them is serialised) and one decryption of each global, which changes
 * nothing they compute. Used by `icosfl-simulate run` and by the tests.
 */
export interface SimulatedAgent {
  id: string;
  data: ParticipantData;
  /** Added to the model's seed for this agent's training (simulate: 1000 × its index). */
  seedOffset: number;
}

export interface InProcessFederationOptions {
  model: FederationModel;
  agents: SimulatedAgent[];
  /** Key material for CKKS; omit for plaintext FedAvg. */
  keys?: { agent: AgentBundle; coordinator: CoordinatorBundle };
  transport?: 'memory' | 'mqtt';
  /** The bus to run over with transport 'memory' (default: a fresh one), so a test can connect an observer to it first. */
  bus?: MemoryBus;
  logger: Logger;
  /** Called with each round's summary as it ends. */
  onRound?: (s: RoundSummary) => void;
  /** Wraps the shared codec (simulate's witness of the CKKS error). */
  wrapCodec?: (c: AgentCodec) => AgentCodec;
  /** Differential privacy for every agent (each its own accountant, in memory); sampling_rate must be 1, as every agent answers every round here. */
  privacy?: PrivacySettings;
}

export interface InProcessFederationResult {
  models: Map<string, FederatedModel>;
  participants: Map<string, Participant>;
  /** Each agent's privacy layer when the federation ran with DP. */
  privacy: Map<string, UpdatePrivacy>;
  engines: Engines;
  history: RoundSummary[];
  seconds: number;
}

interface Endpoint {
  transport: Transport;
  close(): Promise<void>;
}

async function transports(kind: 'memory' | 'mqtt', logger: Logger, given?: MemoryBus): Promise<{ connect(id: string, trusted: boolean): Promise<Endpoint>; close(): Promise<void> }> {
  if (given && kind !== 'memory') throw new TypeError("runInProcessFederation: a bus is only used with transport 'memory'");
  if (kind === 'memory') {
    const bus = given ?? new MemoryBus();
    return {
      async connect(id) {
        const t = await bus.connect({ clientId: id, logger });
        return { transport: t, close: () => t.close() };
      },
      close: async () => undefined,
    };
  }
  const { startEmbeddedBroker } = await import('../coordinator/broker/embedded-broker.js');
  const { connectMqtt } = await import('../common/transport/mqtt.js');
  const broker = await startEmbeddedBroker({ logger });
  return {
    async connect(id, trusted) {
      const t = await connectMqtt(broker.url, { clientId: id, logger, ...(trusted ? { stream: () => broker.trustedStream() } : {}) });
      return { transport: t, close: () => t.close() };
    },
    close: () => broker.close(),
  };
}

export async function runInProcessFederation(o: InProcessFederationOptions): Promise<InProcessFederationResult> {
  const started = performance.now();
  const { model, logger } = o;
  if (o.agents.length === 0) throw new RangeError('runInProcessFederation needs at least one agent');
  if (o.privacy && o.privacy.sampling_rate !== 1) throw new RangeError('runInProcessFederation: every agent answers every round, so privacy.sampling_rate must be 1');
  const engines = createEngines(model);
  const net = await transports(o.transport ?? 'memory', logger, o.bus);
  const endpoints: Endpoint[] = [];
  const cipher = o.keys ? await AgentCipher.create(o.keys.agent) : undefined;
  const baseCodec = cipher ? ckksCodec(cipher) : plaintextCodec();
  const codec = sharedDecodings(o.wrapCodec ? o.wrapCodec(baseCodec) : baseCodec);
  const history: RoundSummary[] = [];
  const models = new Map<string, FederatedModel>();
  const participants = new Map<string, Participant>();
  const privacy = new Map<string, UpdatePrivacy>();
  const clients: FederationClient[] = [];
  const messengers: Messenger[] = [];
  let runner: RoundRunner | undefined;
  try {
    const federation = o.keys?.coordinator.params.federationId ?? 'simulate';
    // Signed as a deployment is: fresh keys for the coordinator and every agent, all enrolled.
    const coordinatorKey = generateSigningKey();
    const agentKeys = new Map(o.agents.map((a) => [a.id, generateSigningKey()]));
    const agentKeyOf = (id: string): SignerKey => {
      const key = agentKeys.get(id);
      return key ? { key } : { refused: 'unknown-signer', detail: `${id} is not one of the simulated agents` };
    };
    const coordinatorKeyOf = (id: string): SignerKey => (id === COORDINATOR_SIGNER ? { key: coordinatorKey } : { refused: 'unknown-signer', detail: `${id} is not the coordinator` });
    const settings = makeSettings({
      federation,
      codec: o.keys ? 'ckks' : 'plaintext',
      keyId: o.keys?.coordinator.params.keyId ?? '',
      model,
      // Every agent takes part in every round: a round closes once all have answered.
      minAgents: o.agents.length,
      maxRoundSamples: o.keys?.coordinator.params.maxRoundSamples ?? 2 ** 31,
      roundTimeoutMs: 3_600_000,
      ackTimeoutMs: 3_600_000,
      roundIntervalMs: 0,
      sessionIntervalMs: 0,
      sessions: 1,
      presenceTimeoutMs: 3_600_000,
    });
    let failed: (err: unknown) => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      failed = reject;
      const c = net.connect('coordinator', true).then(async (ep) => {
        endpoints.push(ep);
        const messenger = new Messenger({ transport: ep.transport, federation, accept: new Set(['update', 'ack', 'presence']), logger, signer: { id: COORDINATOR_SIGNER, key: coordinatorKey }, keyOf: agentKeyOf });
        messengers.push(messenger);
        runner = new RoundRunner({ settings, messenger, journal: new MemoryJournal(), strategy: o.keys ? ckksStrategy(o.keys.coordinator) : plaintextStrategy(), logger });
        runner.on('round', (s: RoundSummary) => {
          history.push(s);
          o.onRound?.(s);
          // Every agent of a simulation is expected in every round: an abandoned one means an agent failed.
          if (s.outcome === 'abandoned') reject(new Error(`round ${s.round} (${s.phase}) was abandoned: ${s.reason}`));
        });
        await ep.transport.subscribe(messenger.topics.updateFilter);
        await ep.transport.subscribe(messenger.topics.ackFilter);
        await ep.transport.subscribe(messenger.topics.presenceFilter);
        await runner.start();
        await runner.finished;
      });
      c.then(resolve, reject);
    });
    for (const a of o.agents) {
      const ep = await net.connect(a.id, false);
      endpoints.push(ep);
      const messenger = new Messenger({ transport: ep.transport, federation, accept: new Set(['announce', 'global']), logger, signer: { id: a.id, key: agentKeys.get(a.id)! }, keyOf: coordinatorKeyOf });
      messengers.push(messenger);
      const dp = o.privacy ? new UpdatePrivacy({ settings: o.privacy, store: memoryAccountantStore(), logger }) : undefined;
      if (dp) privacy.set(a.id, dp);
      const participant = new Participant({ agent: a.id, seedOffset: a.seedOffset, engines: () => engines, codec, data: a.data, logger, ...(dp ? { privacy: dp } : {}) });
      participants.set(a.id, participant);
      const client = new FederationClient({ agent: a.id, federation, transport: ep.transport, messenger, participant, logger, presenceEveryMs: 0, onModel: (fm) => models.set(a.id, fm), onError: (err) => failed(err) });
      clients.push(client);
      await client.start();
    }
    await done;
    // The final round ends when every agent acknowledged it, so every model is in by now.
    return { models, participants, privacy, engines, history, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    engines.dispose();
    throw err;
  } finally {
    await runner?.stop();
    for (const m of messengers) m.close();
    for (const ep of endpoints) await ep.close().catch(() => undefined);
    await net.close();
    codec.dispose();
  }
}
