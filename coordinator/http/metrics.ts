import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StorageHealth } from '../../common/storage-health.js';
import { STORAGE_KINDS } from '../../common/storage-health.js';
import { PHASES, PROTOCOL_VERSION } from '../../common/protocol/messages.js';
import type { RejectReason } from '../../common/protocol/frame.js';
import type { MessengerStats } from '../../common/transport/messenger.js';
import type { TransportStatus } from '../../common/transport/transport.js';
import type { EmbeddedBrokerStats } from '../broker/embedded-broker.js';
import type { RoundRunner, StageChange } from '../round/runner.js';
import { keysOf, type CoordinatorState, type RoundSettings, type RoundStatus, type RoundSummary } from '../round/state.js';
import { isEligible, isOnline } from '../service-status.js';

/**
 * The coordinator's Prometheus metrics (`icosfl_coordinator_*`, docs/MONITORING.md), in a
 * registry of its own. Rounds, stages and bytes are counted from the runner's 'round' and
 * 'stage' events since the process started; everything else is read from the round state and
 * the messenger when scraped. Nothing per agent but presence and participation: no sample
 * count, loss or byte figure of a single agent (those could tell something of its data).
 */
export interface CoordinatorMetricsSources {
  runner: RoundRunner;
  settings: RoundSettings;
  federation: { id: string; keyId: string };
  messenger: () => MessengerStats | null;
  broker: () => { transport: TransportStatus; embedded: EmbeddedBrokerStats | null } | null;
  storage: StorageHealth;
  clock?: () => number;
}

const PREFIX = 'icosfl_coordinator_';
export const ROUND_STAGES: readonly RoundStatus[] = ['collecting', 'aggregating', 'publishing', 'acking'];
/** Every wire rejection reason, exported at 0 from the start (an increase() needs the series before the first rejection). */
export const WIRE_REJECT_REASONS = [
  'truncated', 'bad-magic', 'unknown-version', 'unknown-type', 'reserved-nonzero', 'bad-length', 'oversized', 'bad-header', 'bad-chunk',
  'inconsistent-chunk', 'hash-mismatch', 'too-many-pending', 'rate-limited', 'incomplete', 'type-not-accepted', 'wrong-federation', 'wrong-topic',
  'agent-mismatch', 'unsigned', 'unknown-signer', 'revoked-signer', 'signer-mismatch', 'bad-signature', 'expired', 'replayed',
] as const satisfies readonly RejectReason[];
// Fails to compile when common/protocol adds a reason this list lacks.
const WIRE_REASONS_COMPLETE: Exclude<RejectReason, (typeof WIRE_REJECT_REASONS)[number]> extends never ? true : never = true;
void WIRE_REASONS_COMPLETE;
/** The round's own refusals (coordinator/round/handlers); one not listed still appears once it happens. */
export const ROUND_REJECT_REASONS = ['stale', 'unknown-round', 'late', 'wrong-phase', 'wrong-codec', 'weight', 'sample-budget', 'bad-body'] as const;
export const ABANDON_REASONS = ['below_quorum', 'aggregation_failed', 'other'] as const;
export type AbandonReason = (typeof ABANDON_REASONS)[number];

/** A label for an abandoned round's reason (the reducer's text: coordinator/round/lifecycle.ts, handlers/on-aggregated.ts). */
export function abandonReason(reason: string | null): AbandonReason {
  if (reason === null) return 'other';
  if (reason.startsWith('aggregation failed')) return 'aggregation_failed';
  if (/the quorum needs/.test(reason)) return 'below_quorum';
  return 'other';
}

/** Rounds announced after `firstSeen` and closed since the agent's last accepted update. */
function roundsMissed(state: CoordinatorState, lastRound: number | null, firstSeen: number): number {
  let n = 0;
  for (let i = state.history.length - 1; i >= 0; i--) {
    const h = state.history[i]!;
    if (lastRound !== null && h.round <= lastRound) break;
    // The final round takes no updates, so it is never missed.
    if (h.phase !== 'final' && h.announcedAt >= firstSeen) n++;
  }
  return n;
}

export function createCoordinatorMetrics(src: CoordinatorMetricsSources): Registry {
  const registry = new Registry();
  const registers = [registry];
  const now = src.clock ?? Date.now;
  const state = () => src.runner.state;
  collectDefaultMetrics({ register: registry, prefix: PREFIX });

  new Gauge({
    name: `${PREFIX}info`,
    help: 'The federation this coordinator serves: id, key bundle id, codec, model configuration hash, protocol version (always 1)',
    labelNames: ['federation', 'key_id', 'codec', 'config_hash', 'protocol'],
    registers,
  }).set({ federation: src.federation.id, key_id: src.federation.keyId, codec: src.settings.codec, config_hash: src.settings.configHash, protocol: String(PROTOCOL_VERSION) }, 1);

  // --- rounds, from the runner's events ---
  const rounds = new Counter({ name: `${PREFIX}rounds_total`, help: 'Rounds closed since the service started, by phase (ridge, fedavg, final) and outcome (completed, abandoned)', labelNames: ['phase', 'outcome'], registers });
  const abandoned = new Counter({ name: `${PREFIX}rounds_abandoned_total`, help: 'Rounds abandoned since the service started, by reason (below_quorum: too few updates by the deadline; aggregation_failed)', labelNames: ['reason'], registers });
  const duration = new Histogram({
    name: `${PREFIX}round_duration_seconds`,
    help: 'Announcement to close of each round, by phase and outcome',
    labelNames: ['phase', 'outcome'],
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers,
  });
  const stageDuration = new Histogram({
    name: `${PREFIX}round_stage_duration_seconds`,
    help: 'Time a round spent in each stage: collecting updates, aggregating, publishing the global, collecting acknowledgements',
    labelNames: ['stage'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers,
  });
  const participants = new Histogram({
    name: `${PREFIX}round_participants`,
    help: 'Agents whose update a closed round accepted (final rounds take none and are not counted)',
    buckets: [1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
    registers,
  });
  const roundBytes = new Counter({ name: `${PREFIX}round_bytes_total`, help: "Closed rounds' accepted update bytes (in) and global bytes published (out)", labelNames: ['direction'], registers });
  // Every label combination from the start, so an alert on a rate sees 0 before the first event.
  for (const phase of PHASES) for (const outcome of ['completed', 'abandoned']) rounds.inc({ phase, outcome }, 0);
  for (const reason of ABANDON_REASONS) abandoned.inc({ reason }, 0);
  for (const stage of ROUND_STAGES) stageDuration.zero({ stage });
  for (const direction of ['in', 'out']) roundBytes.inc({ direction }, 0);

  src.runner.on('round', (s: RoundSummary) => {
    rounds.inc({ phase: s.phase, outcome: s.outcome });
    if (s.outcome === 'abandoned') abandoned.inc({ reason: abandonReason(s.reason) });
    duration.observe({ phase: s.phase, outcome: s.outcome }, Math.max(0, s.closedAt - s.announcedAt) / 1000);
    if (s.phase !== 'final') participants.observe(s.participants);
    roundBytes.inc({ direction: 'in' }, s.bytesIn);
    roundBytes.inc({ direction: 'out' }, s.bytesOut);
  });
  // A stage's time is known only when this process saw it begin (a round resumed after a restart is not timed).
  let entered: { round: number; status: RoundStatus; at: number } | null = null;
  src.runner.on('stage', (c: StageChange) => {
    if (entered && c.from && entered.round === c.from.round && entered.status === c.from.status) stageDuration.observe({ stage: c.from.status }, Math.max(0, c.at - entered.at) / 1000);
    entered = c.to ? { ...c.to, at: c.at } : null;
  });

  // --- the last closed round and the one in progress, from the state ---
  const lastRound = () => state().history.at(-1);
  const gauge = (name: string, help: string, value: () => number | undefined) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers,
      collect() {
        const v = value();
        if (v === undefined) this.reset();
        else this.set(v);
      },
    });
  // The info metric's key_id is the bundle loaded at start; rotation moves the active epoch (D14).
  gauge('key_epoch', 'CKKS key epoch the rounds are announced under (0 from keys init, +1 per keys rotate)', () => keysOf(state(), src.settings).active.epoch);
  gauge('key_next_epoch', 'The next key epoch offered (coordinator.next_keys) while a rotation waits for agents to hold it; absent otherwise', () => keysOf(state(), src.settings).next?.epoch);
  gauge('last_round', 'Id of the newest closed round', () => lastRound()?.round);
  gauge('last_round_completed', '1 when the newest closed round completed, 0 when it was abandoned', () => (lastRound() ? (lastRound()!.outcome === 'completed' ? 1 : 0) : undefined));
  gauge('last_round_participants', 'Updates the newest closed round accepted', () => lastRound()?.participants);
  gauge('last_round_expected', 'Agents the newest closed round expected an update from', () => lastRound()?.expected);
  gauge('last_round_acks', 'Acknowledgements the newest closed round got', () => lastRound()?.acks);
  gauge('last_round_duration_seconds', 'Announcement to close of the newest closed round', () => (lastRound() ? (lastRound()!.closedAt - lastRound()!.announcedAt) / 1000 : undefined));
  gauge('last_round_end_timestamp_seconds', 'When the newest closed round closed (unix seconds)', () => (lastRound() ? lastRound()!.closedAt / 1000 : undefined));
  gauge(
    'validation_relative_loss',
    "Pooled validation loss relative to persistence that the agents reported for the newest scored FedAvg global (1 = persistence; below 1 beats it)",
    () => {
      const h = state().history;
      for (let i = h.length - 1; i >= 0; i--) if (h[i]!.score !== null && Number.isFinite(h[i]!.score)) return h[i]!.score!;
      return undefined;
    },
  );
  gauge('round_in_progress', '1 while a round is in progress', () => (state().current ? 1 : 0));
  new Gauge({
    name: `${PREFIX}round_stage`,
    help: 'The stage of the round in progress (1 for the current stage, 0 for the others; all 0 between rounds)',
    labelNames: ['stage'],
    registers,
    collect() {
      const c = state().current;
      for (const stage of ROUND_STAGES) this.set({ stage }, c?.status === stage ? 1 : 0);
    },
  });
  gauge('round_updates', 'Updates the round in progress has accepted so far', () => (state().current ? Object.keys(state().current!.updates).length : 0));
  gauge('round_expected', 'Agents the round in progress expects an update from', () => state().current?.expected.length ?? 0);
  gauge('quorum', 'Updates a round needs (federation.min_agents)', () => src.settings.minAgents);

  // --- sessions ---
  new Counter({
    name: `${PREFIX}sessions_completed_total`,
    help: 'Sessions this federation has finished (kept in the state directory, so it survives restarts)',
    registers,
    collect() {
      this.reset();
      this.inc(state().sessionsDone);
    },
  });
  gauge('session', 'Number of the session in progress (0: none)', () => state().session?.session ?? 0);
  gauge('session_completed_steps', 'Rounds (ridge and FedAvg) the session in progress has completed', () => state().session?.completedSteps ?? 0);
  gauge('sessions_configured', 'Sessions to run before stopping (federation.sessions; 0 = forever)', () => src.settings.sessions);

  // --- agents ---
  new Gauge({
    name: `${PREFIX}agents`,
    help: 'Agents by presence: known (ever seen), online (heard from within presence_timeout_s), eligible (online and ready for a round)',
    labelNames: ['state'],
    registers,
    collect() {
      const t = now();
      const records = Object.values(state().agents);
      this.set({ state: 'known' }, records.length);
      this.set({ state: 'online' }, records.filter((a) => isOnline(a, src.settings, t)).length);
      this.set({ state: 'eligible' }, records.filter((a) => isEligible(a, src.settings, t)).length);
    },
  });
  new Gauge({
    name: `${PREFIX}agent_online`,
    help: 'Per agent: 1 while heard from within presence_timeout_s and not offline',
    labelNames: ['agent'],
    registers,
    collect() {
      this.reset();
      const t = now();
      for (const [agent, a] of Object.entries(state().agents)) this.set({ agent }, isOnline(a, src.settings, t) ? 1 : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}agent_last_seen_timestamp_seconds`,
    help: 'Per agent: when it was last heard from (unix seconds)',
    labelNames: ['agent'],
    registers,
    collect() {
      this.reset();
      for (const [agent, a] of Object.entries(state().agents)) this.set({ agent }, a.lastSeen / 1000);
    },
  });
  new Gauge({
    name: `${PREFIX}agent_rounds_missed`,
    help: 'Per agent: ridge and FedAvg rounds closed since its last accepted update (counting those announced after it was first seen, within the kept round history)',
    labelNames: ['agent'],
    registers,
    collect() {
      this.reset();
      const s = state();
      for (const [agent, a] of Object.entries(s.agents)) this.set({ agent }, roundsMissed(s, a.lastRound, a.firstSeen));
    },
  });

  // --- messages, from the messenger and the round state ---
  const messengerCounter = (name: string, help: string, labelNames: string[], fill: (c: Counter, m: MessengerStats) => void) =>
    new Counter({
      name: `${PREFIX}${name}`,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        const m = src.messenger();
        if (m) fill(this, m);
      },
    });
  messengerCounter('messages_total', 'Federation messages received and sent, by direction and type', ['direction', 'type'], (c, m) => {
    for (const [type, n] of Object.entries(m.received)) c.inc({ direction: 'in', type }, n);
    for (const [type, n] of Object.entries(m.sent)) c.inc({ direction: 'out', type }, n);
  });
  messengerCounter('message_bytes_total', 'Bytes of every MQTT payload received and sent (chunks, rejected ones and presence included)', ['direction'], (c, m) => {
    c.inc({ direction: 'in' }, m.bytesIn);
    c.inc({ direction: 'out' }, m.bytesOut);
  });
  messengerCounter('messages_duplicate_total', 'Messages received again (QoS 1 redelivery) and dropped', [], (c, m) => c.inc(m.duplicates));
  new Counter({
    name: `${PREFIX}messages_rejected_total`,
    help: 'Messages refused, by where (wire: framing, signature, limits, since the service started; round: refused by the round, since the state was created) and reason',
    labelNames: ['stage', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const reason of WIRE_REJECT_REASONS) this.inc({ stage: 'wire', reason }, 0);
      for (const reason of ROUND_REJECT_REASONS) this.inc({ stage: 'round', reason }, 0);
      for (const [reason, n] of Object.entries(src.messenger()?.rejected ?? {})) this.inc({ stage: 'wire', reason }, n ?? 0);
      for (const [reason, n] of Object.entries(state().rejected)) this.inc({ stage: 'round', reason }, n);
    },
  });
  gauge('messenger_pending_bytes', 'Bytes of chunked messages being reassembled', () => src.messenger()?.pendingBytes ?? 0);

  // --- broker and storage ---
  gauge('broker_connected', '1 while the coordinator is connected to the broker (embedded or external)', () => (src.broker()?.transport.connected ? 1 : 0));
  new Counter({
    name: `${PREFIX}broker_reconnects_total`,
    help: 'Reconnections to the broker since the service started',
    registers,
    collect() {
      this.reset();
      this.inc(src.broker()?.transport.reconnects ?? 0);
    },
  });
  gauge('broker_clients', 'Clients connected to the embedded broker (absent with an external broker)', () => src.broker()?.embedded?.clients);
  new Counter({
    name: `${PREFIX}storage_write_failures_total`,
    help: 'Failed writes (disk full, quota, I/O error) of the journal, snapshots, aggregates and the log, by file kind',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      const totals = src.storage.report().write_failures;
      for (const kind of STORAGE_KINDS) this.inc({ kind }, totals[kind]);
    },
  });
  gauge('storage_degraded', "1 while some state file's or the log's latest write failed (see status: storage), else 0", () => (src.storage.degraded ? 1 : 0));
  return registry;
}
