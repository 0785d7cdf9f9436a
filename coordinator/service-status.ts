import type { MessengerStats } from '../common/transport/messenger.js';
import type { TransportStatus } from '../common/transport/transport.js';
import type { EmbeddedBrokerStats } from './broker/embedded-broker.js';
import { keysOf, type AgentRecord, type CoordinatorState, type RoundSettings, type RoundSummary } from './round/state.js';

/**
 * The answers of the control socket's `status`, `agents` and `rounds`, built from the round
 * runner's state (pure, so tests need no service). Field names follow the round state
 * (camelCase); times are epoch milliseconds, durations say their unit.
 */
export interface ServiceFacts {
  pid: number;
  startedAt: number;
  ready: boolean;
  configFile: string | null;
  stateDir: string;
  socket: string;
  federation: string;
  keyId: string;
  /** null until the broker is connected. */
  broker: { url: string; embedded: boolean; port: number | null; transport: TransportStatus; embeddedStats: EmbeddedBrokerStats | null } | null;
  messenger: MessengerStats | null;
  /** The [http] endpoint's base URL (metrics at /metrics, the status page at /); null when off. */
  http: string | null;
  /** Why the [http] endpoint is not listening although enabled (port taken…); null otherwise. */
  httpError: string | null;
}

export interface RoundView {
  round: number;
  session: number;
  phase: string;
  step: number;
  status: string;
  announcedAt: number;
  deadline: number;
  ackDeadline: number | null;
  updates: number;
  expected: number;
  acks: number;
  weightCap: number;
}

export interface AgentView extends AgentRecord {
  id: string;
  /** Heard from within presence_timeout_s, and its last word was not 'offline'. */
  online: boolean;
}

/** Rounds shown in `status`. */
export const STATUS_ROUNDS = 5;

export function isOnline(a: AgentRecord, settings: RoundSettings, now: number): boolean {
  return a.state !== 'offline' && a.lastSeen >= now - settings.presenceTimeoutMs;
}

/** Online and willing (online or busy): what the quorum counts (lifecycle.ts onlineAgents). */
export function isEligible(a: AgentRecord, settings: RoundSettings, now: number): boolean {
  return isOnline(a, settings, now) && (a.state === 'online' || a.state === 'busy');
}

export function roundView(state: CoordinatorState): RoundView | null {
  const c = state.current;
  if (!c) return null;
  return {
    round: c.round,
    session: c.session,
    phase: c.phase,
    step: c.step,
    status: c.status,
    announcedAt: c.announcedAt,
    deadline: c.deadline,
    ackDeadline: c.ackDeadline,
    updates: Object.keys(c.updates).length,
    expected: c.expected.length,
    acks: Object.keys(c.acks).length,
    weightCap: c.weightCap,
  };
}

export function agentsAnswer(state: CoordinatorState, settings: RoundSettings, now: number): { agents: AgentView[]; presenceTimeoutMs: number } {
  const agents = Object.keys(state.agents)
    .sort()
    .map((id) => ({ id, ...state.agents[id]!, online: isOnline(state.agents[id]!, settings, now) }));
  return { agents, presenceTimeoutMs: settings.presenceTimeoutMs };
}

/** The newest `limit` summaries (all without one), newest last; a bad limit is a RangeError (exit 64 at the client). */
export function roundsAnswer(state: CoordinatorState, limit: unknown): { rounds: RoundSummary[]; total: number } {
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) {
    throw new RangeError(`rounds: limit must be a positive integer, got ${JSON.stringify(limit)}`);
  }
  const history = state.history;
  return { rounds: limit === undefined ? [...history] : history.slice(-limit), total: history.length };
}

/** Key epochs: the active one, the next one if installed and how many agents online hold it (the switch needs min_agents). */
export function keysView(state: CoordinatorState, settings: RoundSettings, now: number): { epoch: number; keyId: string; since: number; next: { epoch: number; keyId: string; holders: number } | null } {
  const k = keysOf(state, settings);
  const next = k.next;
  const holders = next ? Object.values(state.agents).filter((a) => isOnline(a, settings, now) && a.keyIds?.includes(next.keyId)).length : 0;
  return { epoch: k.active.epoch, keyId: k.active.keyId, since: k.since, next: next && { ...next, holders } };
}

export function statusAnswer(state: CoordinatorState, settings: RoundSettings, facts: ServiceFacts, now: number): Record<string, unknown> {
  const records = Object.values(state.agents);
  const session = state.session;
  const keys = keysView(state, settings, now);
  return {
    pid: facts.pid,
    ready: facts.ready,
    uptimeS: Math.round((now - facts.startedAt) / 1000),
    configFile: facts.configFile,
    stateDir: facts.stateDir,
    socket: facts.socket,
    federation: { id: facts.federation, keyId: settings.codec === 'ckks' ? keys.keyId : facts.keyId, keyEpoch: keys.epoch, nextKey: keys.next, codec: settings.codec, configHash: settings.configHash, minAgents: settings.minAgents, sessions: settings.sessions },
    broker: facts.broker && {
      url: facts.broker.url,
      embedded: facts.broker.embedded,
      port: facts.broker.port,
      connected: facts.broker.transport.connected,
      connectedAt: facts.broker.transport.connectedAt,
      reconnects: facts.broker.transport.reconnects,
      lastError: facts.broker.transport.lastError,
      clients: facts.broker.embeddedStats?.clients ?? null,
    },
    round: roundView(state),
    nextRoundAt: state.current || state.done ? null : state.nextAt,
    session: session && { session: session.session, startedAt: session.startedAt, completedSteps: session.completedSteps, fedavgRounds: settings.model.rounds, ridge: session.ridge !== null },
    sessionsDone: state.sessionsDone,
    done: state.done,
    paused: pauseView(state),
    agents: {
      online: records.filter((a) => isOnline(a, settings, now)).length,
      eligible: records.filter((a) => isEligible(a, settings, now)).length,
      known: records.length,
    },
    lastRounds: state.history.slice(-STATUS_ROUNDS),
    roundsDone: state.history.length,
    rejected: { ...state.rejected },
    messenger: facts.messenger,
    http: facts.http,
    httpError: facts.httpError,
  };
}

/** The answer of `pause`, `resume` and status's `paused`: since when, and the round still finishing (null: none). */
export function pauseView(state: CoordinatorState): { since: number; finishing: number | null } | null {
  return state.paused ? { since: state.paused.at, finishing: state.current?.round ?? null } : null;
}

/** One line for systemd's STATUS= (and `systemctl status`). */
export function statusLine(state: CoordinatorState, settings: RoundSettings, now: number): string {
  const records = Object.values(state.agents);
  const online = records.filter((a) => isOnline(a, settings, now)).length;
  const eligible = records.filter((a) => isEligible(a, settings, now)).length;
  const agents = `${online} of ${records.length} agents online`;
  const c = state.current;
  if (c) {
    const step = c.phase === 'fedavg' ? ` ${c.step}/${settings.model.rounds}` : '';
    const progress =
      c.status === 'collecting' ? `collecting ${Object.keys(c.updates).length}/${c.expected.length} updates`
      : c.status === 'acking' ? `${Object.keys(c.acks).length} acknowledgements`
      : c.status;
    return `round ${c.round} (session ${c.session}, ${c.phase}${step}): ${progress}${state.paused ? ', then paused' : ''}; ${agents}`;
  }
  if (state.done) return `done: ${state.sessionsDone} session(s) ran; ${agents}`;
  if (state.paused) return `paused (icosfl-coordinator resume): no round is announced; ${agents}`;
  if (eligible < settings.minAgents) return `waiting for agents: ${eligible} of the ${settings.minAgents} a round needs are ready; ${agents}`;
  const wait = Math.max(0, Math.ceil((state.nextAt - now) / 1000));
  return `next round in ${wait} s; ${agents}`;
}
