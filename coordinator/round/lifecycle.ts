import { dropoutSeed, unitWeights } from '../../common/protocol/dropout.js';
import { RIDGE_POOLED_LAMBDAS, ridgeHeads } from '../../common/protocol/federation-model.js';
import type { Announce, GlobalHeader, Phase, Selection } from '../../common/protocol/messages.js';
import { shardOf } from '../../common/protocol/shards.js';
import { pooledRelativeLoss } from '../strategy/model-selection.js';
import { keysOf, type AckRecord, type RoundState, type RoundSummary, type SessionState } from './state.js';
import type { Effect } from './events.js';
import { entryCount, type Step } from './step.js';

/**
 * The transitions every handler shares: announce the next round, close a collection, finish or
 * abandon a round, pick the session's best model and ridge penalties. Pure (they only change the
 * Step), like the handlers that call them.
 */

/** Agents heard from recently whose last word was that they take part. */
export function onlineAgents(step: Step): string[] {
  const { agents } = step.state;
  const since = step.now - step.settings.presenceTimeoutMs;
  return Object.keys(agents)
    .filter((id) => isTaking(agents[id]!, since))
    .sort();
}

function isTaking(a: { lastSeen: number; state: string }, since: number): boolean {
  return a.lastSeen >= since && (a.state === 'online' || a.state === 'busy');
}

/**
 * Whether at least `min` agents are online, without onlineAgents' sorted copy: asked on every
 * presence before a round. O(1) while fewer agents than that are known at all, and the scan
 * stops at the min-th.
 */
function atLeastOnline(step: Step, min: number): boolean {
  const { agents } = step.state;
  if (entryCount(agents) < min) return false;
  const since = step.now - step.settings.presenceTimeoutMs;
  let n = 0;
  for (const id in agents) if (isTaking(agents[id]!, since) && ++n >= min) return true;
  return n >= min;
}

/**
 * The largest n_k an update may claim: Σ n_k must stay within maxRoundSamples (the CKKS range,
 * common/crypto/params.ts) however many agents answer, so the bound is shared among the agents
 * expected plus a quarter for late joiners (never fewer than the quorum). With 4 agents and
 * the default 2^20 no agent is ever capped; with 1,000 each may claim up to 838 windows.
 */
export function weightCap(maxRoundSamples: number, expected: number, minAgents: number): number {
  const shares = Math.max(minAgents, Math.ceil(1.25 * Math.max(expected, 1)));
  return Math.max(1, Math.floor(maxRoundSamples / shares));
}

interface NextRound {
  phase: Phase;
  step: number;
  base: number;
  selection?: Selection;
}

function plan(step: Step, session: SessionState): NextRound {
  const m = step.settings.model;
  if (m.ridgeFeatures > 0 && m.kind !== 'lstm' && !session.ridge) return { phase: 'ridge', step: 0, base: 0 };
  if (session.completedSteps < m.rounds) return { phase: 'fedavg', step: session.completedSteps + 1, base: session.lastGlobal };
  return { phase: 'final', step: 0, base: session.lastGlobal, selection: { bestRound: bestRound(session), ridgeLambdas: session.ridge?.lambdas ?? [] } };
}

/**
 * The candidate with the least pooled validation score, the earliest on a tie (as simulate's
 * FedAvg keeps a round only when it is strictly better); the newest global when none was scored.
 */
export function bestRound(session: SessionState): number {
  let best: { round: number; score: number } | undefined;
  for (const s of session.scores) if (Number.isFinite(s.score) && (!best || s.score < best.score)) best = s;
  return best?.round ?? session.lastGlobal;
}

/**
 * Key rotation's switching rule: between sessions (every round of a session, and the aggregate
 * its final round hands out, is under one key), rounds move to the next epoch once at least
 * min_agents of the agents online say they hold its key. Agents without it then answer
 * 'incompatible'.
 */
export function maybeSwitchKeys(step: Step, online: readonly string[]): void {
  const keys = keysOf(step.state, step.settings);
  const next = keys.next;
  if (!next || step.state.session || step.state.current) return;
  const holders = online.filter((a) => step.state.agents[a]?.keyIds?.includes(next.keyId));
  if (holders.length < step.settings.minAgents) return;
  step.set({ keys: { active: next, next: null, since: step.now } });
  step.log('info', 'key epoch switched: rounds from now on are announced under the new key', { epoch: next.epoch, keyId: next.keyId, previous: keys.active.epoch, holders: holders.length, online: online.length });
}

/** Announces the next round when it is due and enough agents are online. */
export function maybeAnnounce(step: Step): void {
  const s = step.state;
  const settings = step.settings;
  if (s.done || s.current || s.paused || step.now < s.nextAt) return;
  if (!atLeastOnline(step, settings.minAgents)) return;
  const online = onlineAgents(step);
  if (online.length < settings.minAgents) return;
  let session = s.session;
  if (!session) {
    if (settings.sessions > 0 && s.sessionsDone >= settings.sessions) return;
    maybeSwitchKeys(step, online);
    session = { session: s.sessionsDone + 1, startedAt: step.now, ridge: null, completedSteps: 0, lastGlobal: 0, scores: [] };
  }
  const key = keysOf(step.state, settings).active;
  const next = plan(step, session);
  const round = s.nextRound;
  const deadline = step.now + settings.roundTimeoutMs;
  const announce: Announce = {
    type: 'announce',
    federation: settings.federation,
    session: session.session,
    round,
    phase: next.phase,
    step: next.step,
    base: next.base,
    deadline,
    issuedAt: step.now,
    codec: settings.codec,
    keyId: key.keyId,
    // Plaintext runs (benchmarks) have no key, so no epoch.
    ...(settings.codec === 'ckks' ? { keyEpoch: key.epoch } : {}),
    weightCap: weightCap(settings.maxRoundSamples, online.length, settings.minAgents),
    model: settings.model,
    configHash: settings.configHash,
    ...(next.selection ? { selection: next.selection } : {}),
    ...(next.phase === 'fedavg' && settings.model.dropoutRate > 0 ? { dropout: { rate: settings.model.dropoutRate, seed: dropoutSeed(settings.federation, round) } } : {}),
    ...(settings.shards > 1 ? { shards: expectedPerShard(online, settings.shards) } : {}),
  };
  const current: RoundState = {
    round,
    session: session.session,
    phase: next.phase,
    step: next.step,
    base: next.base,
    status: next.phase === 'final' ? 'publishing' : 'collecting',
    announcedAt: step.now,
    deadline,
    weightCap: announce.weightCap,
    expected: online,
    updates: {},
    acks: {},
    ackDeadline: null,
    global: null,
    source: next.phase === 'final' ? next.selection!.bestRound : round,
    ...(next.selection ? { selection: next.selection } : {}),
    announce,
    bytesOut: 0,
  };
  step.set({ session, current, nextRound: round + 1 });
  step.emit({ type: 'announce', message: announce });
  step.log('info', 'round announced', { round, session: session.session, phase: next.phase, step: next.step, expected: online.length, weightCap: announce.weightCap, deadline: new Date(deadline).toISOString() });
  // The final round sums nothing: its global is the best round's aggregate, sent at once.
  if (next.phase === 'final') publishGlobal(step);
}

/**
 * Federated dropout: per hidden unit, Σ n_k of the contributors that kept it (common/protocol/dropout.ts);
 * for a final round, those of the round whose aggregate it hands out.
 */
function globalUnitWeights(step: Step, c: RoundState): number[] | undefined {
  if (c.phase === 'final') return step.state.session?.unitWeights?.[String(c.source)];
  if (!c.announce.dropout || !c.global) return undefined;
  const contributors = Object.keys(c.updates).sort().map((agent) => ({ agent, samples: c.updates[agent]!.samples }));
  return unitWeights(c.announce.dropout, contributors, step.settings.model.hiddenUnits);
}

/** How many of the agents online at an announcement each shard's worker should wait for. */
export function expectedPerShard(online: readonly string[], shards: number): number[] {
  const counts = new Array<number>(shards).fill(0);
  for (const a of online) counts[shardOf(a, shards)]!++;
  return counts;
}

export function globalHeader(step: Step, c: RoundState): GlobalHeader {
  const weights = globalUnitWeights(step, c);
  return {
    type: 'global',
    federation: step.settings.federation,
    session: c.session,
    round: c.round,
    phase: c.phase,
    clients: c.global?.clients ?? 0,
    totalSamples: c.global?.totalSamples ?? 0,
    codec: step.settings.codec,
    ...(c.selection ? { selection: c.selection } : {}),
    ...(c.announce.keyEpoch !== undefined ? { keyEpoch: c.announce.keyEpoch } : {}),
    ...(weights ? { unitWeights: weights } : {}),
  };
}

export function publishGlobal(step: Step): void {
  const c = step.state.current!;
  step.emit({ type: 'publish-global', header: globalHeader(step, c), source: c.source, previousChunks: step.state.globalChunks });
}

/**
 * Collection may close early: the quorum is in and every expected agent has answered, or (sharded
 * rounds) every shard's partial sum is in: no other update can come.
 */
export function collectionComplete(c: RoundState, minAgents: number, shards = 1): boolean {
  const n = Object.keys(c.updates).length;
  if (n < minAgents) return false;
  if (shards > 1 && Object.keys(c.partials ?? {}).length === shards) return true;
  return c.expected.every((a) => a in c.updates);
}

/** Who must acknowledge: the round's contributors, or for a final every agent expected. */
export function ackers(c: RoundState): string[] {
  return c.phase === 'final' ? c.expected : Object.keys(c.updates).sort();
}

/**
 * Ackers not yet seen acknowledged, per acks map: the runner's maps live a whole round (written in
 * place, step.ts), so each check resumes where the last stopped instead of scanning every acker
 * again (O(N) per acknowledgement: 2.6 s of a 3,000-agent round). A cache only: a complete
 * answer is confirmed by a full scan, and a copied map (pure reductions) starts a scan afresh.
 */
const ackScans = new WeakMap<object, { ackers: object; pending: Set<string> }>();

function allAcked(c: RoundState): boolean {
  if (c.phase === 'final') return c.expected.every((a) => a in c.acks);
  for (const a in c.updates) if (!(a in c.acks)) return false;
  return true;
}

/** Every acker has acknowledged. Checked on each acknowledgement, so without ackers()' sorted copy. */
export function ackComplete(c: RoundState): boolean {
  const source = c.phase === 'final' ? c.expected : c.updates;
  let scan = ackScans.get(c.acks);
  if (!scan || scan.ackers !== source) {
    scan = { ackers: source, pending: new Set(c.phase === 'final' ? c.expected : Object.keys(c.updates)) };
    ackScans.set(c.acks, scan);
  }
  for (const a of scan.pending) {
    if (!(a in c.acks)) return false;
    scan.pending.delete(a);
  }
  const complete = allAcked(c);
  if (!complete) ackScans.delete(c.acks);
  return complete;
}

/** Ends collection: aggregate with the quorum, or abandon below it. */
export function closeCollection(step: Step, why: 'complete' | 'deadline'): void {
  const c = step.state.current!;
  const agents = Object.keys(c.updates).sort();
  if (agents.length < step.settings.minAgents) {
    abandon(step, `${agents.length} of the ${step.settings.minAgents} updates the quorum needs arrived by the deadline`);
    return;
  }
  // Round 0 of the session (the initial model) is scored from the first FedAvg step's reports.
  if (c.phase === 'fedavg' && c.step === 1 && c.base === 0) {
    const session = step.state.session!;
    const score = pooled(agents.map((a) => c.updates[a]!.baseLoss));
    if (score !== null && !session.scores.some((s) => s.round === 0)) step.set({ session: { ...session, scores: [{ round: 0, score }, ...session.scores] } });
  }
  step.patchCurrent({ status: 'aggregating' });
  const effect = aggregateEffect(c);
  step.emit(effect);
  step.log('info', 'collection closed', { round: c.round, phase: c.phase, updates: agents.length, expected: c.expected.length, why, ...(effect.shards ? { partials: effect.shards.length } : {}) });
}

/** What to sum for a round: its agents' stored updates, but those a shard's worker summed, which are in that shard's partial. */
export function aggregateEffect(c: RoundState): Extract<Effect, { type: 'aggregate' }> {
  const agents = Object.keys(c.updates).sort();
  const inPartials = new Set(Object.values(c.partials ?? {}).flatMap((p) => p.agents));
  const shards = Object.keys(c.partials ?? {}).map(Number).sort((a, b) => a - b);
  const direct = inPartials.size === 0 ? agents : agents.filter((a) => !inPartials.has(a));
  return { type: 'aggregate', round: c.round, agents: direct, ...(shards.length > 0 ? { shards } : {}) };
}

/** Pooled relative loss of the finite (or infinite) reports; null when there is none. */
function pooled(losses: (number | null | undefined)[]): number | null {
  const xs = losses.filter((x): x is number => typeof x === 'number' && !Number.isNaN(x));
  return xs.length > 0 ? pooledRelativeLoss(xs) : null;
}

/**
 * Each head's pooled penalty: the one with the least pooled validation score over the agents
 * that reported every penalty of that head (as simulate's bestHead ranks them). An empty list
 * when some head has no usable penalty: the session then has no ridge model.
 */
export function ridgeLambdas(acks: AckRecord[], heads: number): number[] {
  const out: number[] = [];
  for (let h = 0; h < heads; h++) {
    const rows = acks.map((a) => a.ridgeLosses?.[h]).filter((r): r is (number | null)[] => Array.isArray(r) && r.length === RIDGE_POOLED_LAMBDAS.length);
    if (rows.length === 0) return [];
    let best: { j: number; score: number } | undefined;
    for (let j = 0; j < RIDGE_POOLED_LAMBDAS.length; j++) {
      const xs = rows.map((r) => r[j]);
      // A penalty some agent could not evaluate (its system not positive definite) is skipped, as bestHead skips it.
      if (xs.some((x) => x === null || x === undefined || Number.isNaN(x))) continue;
      const score = pooledRelativeLoss(xs as number[]);
      if (!best || score < best.score) best = { j, score };
    }
    if (!best) return [];
    out.push(RIDGE_POOLED_LAMBDAS[best.j]!);
  }
  return out;
}

function summary(step: Step, c: RoundState, outcome: RoundSummary['outcome'], reason: string | null, score: number | null): RoundSummary {
  const updates = Object.values(c.updates);
  return {
    round: c.round,
    session: c.session,
    phase: c.phase,
    step: c.step,
    outcome,
    reason,
    expected: c.expected.length,
    participants: updates.length,
    acks: Object.keys(c.acks).length,
    clients: c.global?.clients ?? 0,
    totalSamples: c.global?.totalSamples ?? 0,
    bytesIn: updates.reduce((a, u) => a + u.bytes, 0),
    bytesOut: c.bytesOut,
    announcedAt: c.announcedAt,
    closedAt: step.now,
    score,
    ...(c.announce.keyEpoch !== undefined ? { keyEpoch: c.announce.keyEpoch } : {}),
  };
}

function pushHistory(step: Step, s: RoundSummary): void {
  const history = [...step.state.history, s];
  step.set({ history: history.slice(Math.max(0, history.length - step.settings.historyLimit)) });
}

/** Candidate aggregates the session may still hand out (its scored FedAvg rounds) plus the one retained now. */
function keptAggregates(step: Step): number[] {
  const keep = new Set<number>();
  const session = step.state.session;
  if (session) for (const s of session.scores) if (s.round > 0) keep.add(s.round);
  if (session?.lastGlobal) keep.add(session.lastGlobal);
  const lp = step.state.lastPublished;
  if (lp && lp.source > 0) keep.add(lp.source);
  return [...keep].sort((a, b) => a - b);
}

function endRound(step: Step, s: RoundSummary, interval: number): void {
  pushHistory(step, s);
  step.set({ current: null, nextAt: step.now + interval });
  step.emit({ type: 'release', round: s.round, keepAggregates: keptAggregates(step) });
  step.emit({ type: 'checkpoint' });
  if (step.settings.sessions > 0 && step.state.sessionsDone >= step.settings.sessions && !step.state.session) {
    step.set({ done: true });
    step.emit({ type: 'done' });
    step.log('info', 'every configured session ran', { sessions: step.state.sessionsDone });
    return;
  }
  maybeAnnounce(step);
}

export function abandon(step: Step, reason: string): void {
  const c = step.state.current!;
  step.log('warn', 'round abandoned', { round: c.round, phase: c.phase, reason, updates: Object.keys(c.updates).length });
  endRound(step, summary(step, c, 'abandoned', reason, null), step.settings.roundIntervalMs);
}

/** The acknowledgements are in (or their deadline passed): score the round and move the session on. */
export function finishRound(step: Step): void {
  const c = step.state.current!;
  const session = step.state.session!;
  const acks = Object.values(c.acks).filter((a) => a.ok);
  let score: number | null = null;
  if (c.phase === 'fedavg') {
    score = pooled(acks.map((a) => a.loss));
    const weights = globalUnitWeights(step, c);
    step.set({
      session: {
        ...session,
        completedSteps: session.completedSteps + 1,
        lastGlobal: c.round,
        scores: [...session.scores, ...(score === null ? [] : [{ round: c.round, score }])],
        ...(weights ? { unitWeights: { ...session.unitWeights, [String(c.round)]: weights } } : {}),
      },
    });
  } else if (c.phase === 'ridge') {
    const lambdas = ridgeLambdas(acks, ridgeHeads(step.settings.model));
    if (lambdas.length === 0) step.log('warn', 'no ridge penalty could be chosen; this session has no ridge model', { round: c.round, acks: acks.length });
    step.set({ session: { ...session, ridge: { round: c.round, lambdas } } });
  }
  step.log('info', 'round completed', { round: c.round, phase: c.phase, step: c.step, participants: Object.keys(c.updates).length, acks: acks.length, score });
  const s = summary(step, c, 'completed', null, score);
  if (c.phase === 'final') {
    step.set({ session: null, sessionsDone: step.state.sessionsDone + 1 });
    endRound(step, s, step.settings.sessionIntervalMs);
    return;
  }
  endRound(step, s, step.settings.roundIntervalMs);
}
