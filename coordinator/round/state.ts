import type { Announce, Codec, GlobalHeader, Phase, PresenceState, Selection } from '../../common/protocol/messages.js';
import { modelConfigHash, modelParamCount, ridgePayloadLength, type FederationModel } from '../../common/protocol/federation-model.js';
import { MAX_SHARDS } from '../../common/protocol/shards.js';

/**
 * The coordinator's whole state: plain JSON (it is the snapshot journal.ts writes), changed only
 * by reducer.ts. A federation runs sessions; a session runs rounds (a ridge round, `model.rounds`
 * FedAvg rounds, a final round); a round collects updates, has them summed, publishes the
 * global and collects acknowledgements.
 */
export interface RoundSettings {
  federation: string;
  codec: Codec;
  /** The federation key's id (coordinator.json keyId), announced so agents with another key say so. */
  keyId: string;
  /** Its epoch (0 from `keys init`, +1 per `keys rotate`); a journal's later switch (state.keys) overrides both. */
  keyEpoch?: number;
  model: FederationModel;
  configHash: string;
  /** Updates a round needs (quorum); a round is announced only once this many agents are online. */
  minAgents: number;
  /** Collection window after an announcement. */
  roundTimeoutMs: number;
  /** Window for acknowledgements after the global is out. */
  ackTimeoutMs: number;
  /** Pause between the rounds of a session, and between sessions. */
  roundIntervalMs: number;
  sessionIntervalMs: number;
  /** Stop after this many sessions; 0 = run forever. */
  sessions: number;
  /** An agent not heard from for this long counts as offline. */
  presenceTimeoutMs: number;
  /** Σ n_k bound of the key bundle (CKKS range); the weight cap divides it among the agents. */
  maxRoundSamples: number;
  /** Collection time a round in progress gets after a restart, so agents can resend. */
  resumeGraceMs: number;
  /** Round summaries kept in the state (older ones are dropped). */
  historyLimit: number;
  /** Aggregator shards (0 or 1: none, the coordinator takes every update itself); announced as `shards` when > 1. */
  shards: number;
  /** Expected parameter count of a FedAvg and of a ridge update (federation-model.ts). */
  paramCounts: { fedavg: number; ridge: number };
}

export interface UpdateRecord {
  samples: number;
  windows: number;
  bytes: number;
  /** The base model's validation relative loss the agent reported (null: none). */
  baseLoss: number | null;
  at: number;
}

export interface AckRecord {
  ok: boolean;
  reason?: string;
  loss: number | null;
  ridgeLosses?: (number | null)[][];
  at: number;
}

export type RoundStatus = 'collecting' | 'aggregating' | 'publishing' | 'acking';

export interface RoundState {
  round: number;
  session: number;
  phase: Phase;
  step: number;
  base: number;
  status: RoundStatus;
  announcedAt: number;
  deadline: number;
  weightCap: number;
  /** Agents expected to answer (online at the announcement, or that came online since). */
  expected: string[];
  updates: Record<string, UpdateRecord>;
  /** Sharded rounds: the partial sums taken, by shard: the agents each summed (their updates are in `updates`) and its bytes. */
  partials?: Record<string, { agents: string[]; bytes: number }>;
  acks: Record<string, AckRecord>;
  ackDeadline: number | null;
  global: { clients: number; totalSamples: number; bytes: number; aggregatedAt: number } | null;
  /** The round whose aggregate this round's global carries (itself, or the best one for a final; 0 = none). */
  source: number;
  selection?: Selection;
  /** The announcement as sent (republished, retained, after a restart). */
  announce: Announce;
  bytesOut: number;
}

export interface SessionState {
  session: number;
  startedAt: number;
  ridge: { round: number; lambdas: number[] } | null;
  completedSteps: number;
  /** Round id of the newest FedAvg global of the session (0 = the seeded initial model). */
  lastGlobal: number;
  /** Federated dropout: each FedAvg round's per-unit weights (global unitWeights), by round id, for the final round's global. */
  unitWeights?: Record<string, number[]>;
  /** Pooled validation score of each candidate model, in order (round 0 = the initial model). */
  scores: { round: number; score: number }[];
}

export interface AgentRecord {
  firstSeen: number;
  lastSeen: number;
  state: PresenceState;
  reason: string | null;
  windows: number | null;
  /** Last round it sent an accepted update for / whose global it acknowledged. */
  lastRound: number | null;
  installed: number | null;
  rounds: number;
  lastError: string | null;
  /** CKKS key ids the agent said it holds (presence `keys`); null: it never said. */
  keyIds?: string[] | null;
}

/** A key epoch: its number and its key's id. */
export interface KeyEpoch {
  epoch: number;
  keyId: string;
}

/**
 * The key rounds are announced with, and the next epoch's once the coordinator picked up its
 * bundle (coordinator.next_keys): rounds switch to it at a session boundary once min_agents
 * online agents hold it (lifecycle.ts maybeSwitchKeys).
 */
export interface KeyState {
  active: KeyEpoch;
  next: KeyEpoch | null;
  /** When the active epoch began (0: the configured one at the first start). */
  since: number;
}

export type RoundOutcome = 'completed' | 'abandoned';

export interface RoundSummary {
  round: number;
  session: number;
  phase: Phase;
  step: number;
  outcome: RoundOutcome;
  reason: string | null;
  expected: number;
  participants: number;
  acks: number;
  clients: number;
  totalSamples: number;
  bytesIn: number;
  bytesOut: number;
  announcedAt: number;
  closedAt: number;
  /** Pooled validation loss relative to persistence (FedAvg rounds; 1 = persistence), null when nobody reported. */
  score: number | null;
  /** The key epoch the round was announced under (CKKS; absent for plaintext). */
  keyEpoch?: number;
}

export interface CoordinatorState {
  format: 1;
  federation: string;
  configHash: string;
  nextRound: number;
  session: SessionState | null;
  sessionsDone: number;
  current: RoundState | null;
  /** When the next round is announced (once enough agents are online). */
  nextAt: number;
  /** The global agents should find retained (republished after a restart: the embedded broker keeps nothing). */
  lastPublished: { header: GlobalHeader; source: number } | null;
  /** Chunks of the last global, so stale retained chunk topics of a larger one get cleared. */
  globalChunks: number;
  agents: Record<string, AgentRecord>;
  history: RoundSummary[];
  /** Rejected messages by reason since the state was created. */
  rejected: Record<string, number>;
  done: boolean;
  /**
   * Set by `icosfl-coordinator pause`: no new round is announced (the one in progress finishes).
   * Journaled, so a restart stays paused. Absent in snapshots made before pause existed.
   */
  paused?: { at: number } | null;
  /** Absent in snapshots written before key rotation: the settings' key then (keysOf). */
  keys?: KeyState;
}

/** The state's key epochs, or the configured key for a state that never rotated. */
export function keysOf(state: CoordinatorState, s: RoundSettings): KeyState {
  return state.keys ?? { active: { epoch: s.keyEpoch ?? 0, keyId: s.keyId }, next: null, since: 0 };
}

export function initialState(s: RoundSettings, now: number): CoordinatorState {
  return {
    format: 1,
    federation: s.federation,
    configHash: s.configHash,
    nextRound: 1,
    session: null,
    sessionsDone: 0,
    current: null,
    nextAt: now,
    lastPublished: null,
    globalChunks: 0,
    agents: {},
    history: [],
    rejected: {},
    done: false,
    paused: null,
    keys: { active: { epoch: s.keyEpoch ?? 0, keyId: s.keyId }, next: null, since: 0 },
  };
}

/** Phase-dependent expected update length (in parameters). */
export function expectedParams(s: RoundSettings, phase: Phase): number {
  return phase === 'ridge' ? s.paramCounts.ridge : s.paramCounts.fedavg;
}

/** Round timing defaults: a round waits up to two minutes for updates, one for acknowledgements. */
export const DEFAULT_TIMING = {
  roundTimeoutMs: 120_000,
  ackTimeoutMs: 60_000,
  roundIntervalMs: 2_000,
  sessionIntervalMs: 3_600_000,
  presenceTimeoutMs: 90_000,
  resumeGraceMs: 30_000,
  historyLimit: 2_000,
} as const;

export type SettingsInput = Pick<RoundSettings, 'federation' | 'codec' | 'keyId' | 'model' | 'minAgents' | 'maxRoundSamples'> &
  Partial<Omit<RoundSettings, 'configHash' | 'paramCounts'>>;

/** Complete settings: timing defaults filled in, the model's hash and layout lengths derived once. */
export function makeSettings(i: SettingsInput): RoundSettings {
  if (!Number.isInteger(i.minAgents) || i.minAgents < 1) throw new RangeError(`minAgents must be a positive integer, got ${i.minAgents}`);
  const shards = i.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 0 || shards > MAX_SHARDS) throw new RangeError(`shards must be an integer 0…${MAX_SHARDS}, got ${i.shards}`);
  return {
    ...DEFAULT_TIMING,
    sessions: 0,
    ...i,
    shards: Math.max(1, shards),
    configHash: modelConfigHash(i.model),
    paramCounts: { fedavg: modelParamCount(i.model), ridge: ridgePayloadLength(i.model) },
  };
}
