import { createPublicKey } from 'node:crypto';
import { IcosflError } from '../../common/errors.js';
import { loadSigningKey } from '../../common/crypto/signing-keys.js';
import { createLogger, resolveLogOutput, setRootLogger, type Logger } from '../../common/log.js';
import { stdoutLogDestination } from '../../common/log-destination.js';
import type { Message } from '../../common/protocol/messages.js';
import { COORDINATOR_SIGNER, type Signer, type SignerKey } from '../../common/protocol/signature.js';
import { Messenger } from '../../common/transport/messenger.js';
import type { Transport } from '../../common/transport/transport.js';
import type { CoordinatorBundle } from '../../common/crypto/bundle.js';
import { loadFederationKeys, resolveFederation } from '../config/federation.js';
import { loadCoordinatorConfig, type LoadOptions } from '../config/load.js';
import type { CoordinatorConfig } from '../config/schema.js';
import { EnrolmentRegistry } from '../enrolment.js';
import { openBroker } from '../service-broker.js';
import { CoordinatorKeyRing } from '../key-ring.js';
import { ShardCollector } from './shard-collector.js';

/**
 * `icosfl-coordinator aggregate --shard K/S`: an aggregator worker. It reads the leader's retained
 * announcement, takes the updates agents publish on shard K's topic, sums them without any key (wire kind 3 past 376 agents) and publishes one
 * signed partial sum per round on partial/K for `serve`, which adds the partials. It signs with
 * the coordinator's own key (docs/decisions.md D18) and connects with the coordinator's broker
 * identity under its own client id (`<client_id>-shard-K`, a persistent session: updates sent
 * while it restarts are queued by the broker).
 */
const KEY_POLL_MS = 1_000;

export interface AggregatorOptions {
  shard: number;
  shards: number;
  transport: Transport;
  federation: string;
  /** The bundle of a key id: coordinator.keys and, during a rotation, coordinator.next_keys (key-ring.ts). */
  bundleFor: (keyId: string) => CoordinatorBundle | undefined;
  logger: Logger;
  marginMs: number;
  chunkBytes?: number;
  signer?: Signer;
  keyOf?: (signer: string) => SignerKey;
  agentBudget?: { maxBytes: number; maxMessages: number };
  clock?: () => number;
  tickMs?: number;
}

export class AggregatorWorker {
  readonly #o: AggregatorOptions;
  readonly #now: () => number;
  readonly messenger: Messenger;
  readonly #collector: ShardCollector;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  /** Partial sums published, for status and tests. */
  sent = 0;

  constructor(o: AggregatorOptions) {
    this.#o = o;
    this.#now = o.clock ?? Date.now;
    this.messenger = new Messenger({
      transport: o.transport,
      federation: o.federation,
      accept: new Set(['announce', 'update']),
      logger: o.logger,
      ...(o.chunkBytes === undefined ? {} : { chunkBytes: o.chunkBytes }),
      ...(o.signer ? { signer: o.signer } : {}),
      ...(o.keyOf ? { keyOf: o.keyOf } : {}),
      ...(o.agentBudget ? { agentBudget: o.agentBudget } : {}),
      now: this.#now,
    });
    this.#collector = new ShardCollector({ shard: o.shard, shards: o.shards, federation: o.federation, bundleFor: o.bundleFor, marginMs: o.marginMs });
  }

  async start(): Promise<void> {
    const { transport, shard } = this.#o;
    this.messenger.onMessage((m) => this.#serial(() => this.#inbound(m)));
    const t = this.messenger.topics;
    for (const filter of [t.round, t.shardUpdateFilter(shard)]) await transport.subscribe(filter);
    const tick = () => {
      void this.#serial(() => this.#maybeSend());
      this.#timer = setTimeout(tick, this.#o.tickMs ?? 250);
    };
    this.#timer = setTimeout(tick, this.#o.tickMs ?? 250);
  }

  #serial(fn: () => Promise<void> | void): Promise<void> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch((err) => this.#o.logger.error({ err }, 'aggregator event failed'));
    return run;
  }

  async #inbound(m: Message): Promise<void> {
    const log = this.#o.logger;
    if (m.type === 'announce') {
      const before = this.#collector.round;
      const v = this.#collector.onAnnounce(m);
      if (!v.taken) log.warn({ reason: v.reason, round: m.round }, v.detail);
      else if (this.#collector.round !== before) {
        this.messenger.resetAgentBudgets();
        log.info({ round: m.round, phase: m.phase, expected: m.shards?.[this.#o.shard] ?? null, deadline: new Date(m.deadline).toISOString() }, 'collecting shard');
      }
    } else if (m.type === 'update') {
      const v = this.#collector.onUpdate(m);
      if (!v.taken) log.warn({ reason: v.reason, agent: m.agent, round: m.round }, v.detail);
    }
    await this.#maybeSend();
  }

  async #maybeSend(): Promise<void> {
    if (!this.#collector.due(this.#now())) return;
    const started = performance.now();
    const partial = this.#collector.partial();
    const bytes = await this.messenger.send(partial);
    this.sent++;
    this.#o.logger.info({ round: partial.round, shard: partial.shard, agents: partial.agents.length, bytes, sumMs: Math.round(performance.now() - started) }, 'partial sum sent');
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#chain;
    this.messenger.close();
  }
}

/** The coordinator's signing key for the worker's partial sums, and the keys it checks: enrolled agents and the coordinator (the announcement). */
function workerSigning(c: CoordinatorConfig, security: Logger): { signer?: Signer; keyOf?: (signer: string) => SignerKey } {
  if (c.coordinator.signing_key === '') {
    security.warn({ event: 'signing-off' }, 'coordinator.signing_key is not set: partial sums are not signed and nothing received is checked');
    return {};
  }
  const key = loadSigningKey(c.coordinator.signing_key);
  const own = createPublicKey(key);
  const registry = new EnrolmentRegistry(
    c.coordinator.enrolled_agents,
    (err) => security.error({ event: 'enrolment-unreadable', err: err.message, file: c.coordinator.enrolled_agents }, 'the enrolment file became unreadable; the last good list stays in force'),
    (change) => security.info({ event: 'enrolment-changed', ...change, file: c.coordinator.enrolled_agents }, 'enrolled agents changed'),
  );
  return { signer: { id: COORDINATOR_SIGNER, key }, keyOf: (id) => (id === COORDINATOR_SIGNER ? { key: own } : registry.keyOf(id)) };
}

/** The worker process: config, keys, broker, then runs until SIGTERM/SIGINT; the exit code. */
export async function runAggregator(load: LoadOptions, spec: { shard: number; shards: number }): Promise<number> {
  const config = loadCoordinatorConfig(load);
  const c = config.coordinator;
  const root = createLogger({ level: c.log_level, output: resolveLogOutput(c.log_format, 1), destination: stdoutLogDestination().stream });
  setRootLogger(root);
  const log = root.child({ component: 'aggregator', shard: spec.shard });
  const where = (key: string) => `${key} (${config.origins.get(key) ?? config.source ?? 'defaults'})`;
  if (config.federation.shards !== spec.shards) {
    throw new IcosflError('CONFIG_INVALID', `--shard ${spec.shard}/${spec.shards}: ${where('federation.shards')} is ${config.federation.shards}; run the workers with the leader's config (S = federation.shards)`);
  }
  if (config.broker.url === 'embedded') {
    throw new IcosflError('CONFIG_INVALID', `${where('broker.url')}: aggregator workers need an external broker (Mosquitto, EMQX) that serve and every worker connect to; docs/OPERATIONS.md`);
  }
  const bundle = await loadFederationKeys(config);
  if (!bundle) throw new IcosflError('CONFIG_INVALID', `${where('coordinator.codec')}: aggregator workers sum CKKS ciphertexts; a plaintext federation has no shards`);
  const federation = resolveFederation(config, bundle);
  const signing = workerSigning(config, root.child({ component: 'security' }));
  const link = await openBroker({ ...config, broker: { ...config.broker, client_id: `${config.broker.client_id}-shard-${spec.shard}` } }, (name) => root.child({ component: name }), federation.id);
  // The next key epoch's bundle too, read again when it changes, as serve does: a rotation needs no worker restart.
  const keyRing = new CoordinatorKeyRing(bundle, c.next_keys, root);
  keyRing.poll();
  const keyPoll = setInterval(() => keyRing.poll(), KEY_POLL_MS);
  const worker = new AggregatorWorker({
    shard: spec.shard,
    shards: spec.shards,
    transport: link.transport,
    federation: federation.id,
    bundleFor: (keyId) => keyRing.bundleFor(keyId),
    logger: log,
    marginMs: config.federation.partial_margin_s * 1000,
    chunkBytes: config.broker.chunk_bytes,
    agentBudget: { maxBytes: config.federation.agent_bytes_per_round, maxMessages: config.federation.agent_messages_per_round },
    ...signing,
  });
  await worker.start();
  log.info({ shard: spec.shard, shards: spec.shards, broker: link.url, federation: federation.id }, 'aggregator worker running');
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal, sent: worker.sent }, 'aggregator worker stopping');
  clearInterval(keyPoll);
  await worker.stop();
  await link.transport.close();
  return 0;
}
