import { lossFromWire, type PartialSum } from '../../../common/protocol/messages.js';
import { shardOf } from '../../../common/protocol/shards.js';
import { collectionComplete, closeCollection } from '../lifecycle.js';
import { expectedParams, type AgentRecord, type UpdateRecord } from '../state.js';
import type { Step } from '../step.js';

/**
 * An aggregator worker's sum of its shard's updates (sharded rounds). Taken once per shard, for
 * the round being collected, when every agent it lists belongs to that shard, is listed once, sent
 * no update of its own, and claims a weight within the round's cap; the Σ n_k bound holds; and the
 * body is an aggregate of exactly those agents and weights (the strategy's check). Each listed
 * agent then counts as if its update had come here: quorum, weights, base losses, acknowledgers.
 */
export type PartialCheck = (body: Uint8Array, params: number, clients: number, samples: number) => string | undefined;

export function onPartial(step: Step, m: PartialSum, checkPartial: PartialCheck): void {
  const c = step.state.current;
  const who = { shard: m.shard, round: m.round, session: m.session, phase: m.phase, agents: m.agents.length };
  if (!c || m.round !== c.round || m.session !== c.session) {
    const reason = m.round < (c?.round ?? step.state.nextRound) ? 'stale' : 'unknown-round';
    return step.reject(reason, `partial sum of shard ${m.shard} for round ${m.round} refused: ${c ? `round ${c.round} is in progress` : 'no round is in progress'}`, who);
  }
  const shards = step.settings.shards;
  if (m.shards !== shards || m.shard >= shards) return step.reject('wrong-shard', `partial sum of shard ${m.shard}/${m.shards}; this federation runs ${shards} shard(s)`, who);
  if (c.partials && String(m.shard) in c.partials) {
    step.log('debug', 'duplicate partial sum ignored', who);
    return;
  }
  if (c.status !== 'collecting') return step.reject('late', `partial sum of shard ${m.shard} for round ${m.round} arrived after its collection closed`, who);
  if (m.phase !== c.phase) return step.reject('wrong-phase', `partial sum of phase ${m.phase} for a ${c.phase} round`, who);
  if (m.codec !== step.settings.codec) return step.reject('wrong-codec', `partial sum encoded as ${m.codec}; this federation uses ${step.settings.codec}`, who);
  let total = 0;
  for (const a in c.updates) total += c.updates[a]!.samples;
  const seen = new Set<string>();
  for (const a of m.agents) {
    let why: string | undefined;
    if (seen.has(a.agent)) why = 'is listed twice';
    else if (shardOf(a.agent, shards) !== m.shard) why = `belongs to shard ${shardOf(a.agent, shards)}`;
    else if (a.agent in c.updates) why = 'is already counted in this round';
    else if (a.samples > c.weightCap || a.samples > a.windows) why = `claims weight ${a.samples} (windows ${a.windows}); the round allows at most ${c.weightCap}, and no more than its windows`;
    if (why) return step.reject('bad-partial', `partial sum of shard ${m.shard} refused: agent ${a.agent} ${why}`, who);
    seen.add(a.agent);
    total += a.samples;
  }
  if (total > step.settings.maxRoundSamples) {
    return step.reject('sample-budget', `Σ n_k would reach ${total}, over the federation's maxRoundSamples ${step.settings.maxRoundSamples}`, who);
  }
  const samples = m.agents.reduce((s, a) => s + a.samples, 0);
  const bad = checkPartial(m.body, expectedParams(step.settings, c.phase), m.agents.length, samples);
  if (bad) return step.reject('bad-body', `partial sum of shard ${m.shard} refused: ${bad}`, who);

  const entries: [string, UpdateRecord][] = [];
  const expected = new Set(c.expected);
  for (const a of m.agents) {
    const baseLoss = a.baseLoss === undefined ? null : lossFromWire(a.baseLoss);
    entries.push([a.agent, { samples: a.samples, windows: a.windows, bytes: a.bytes, baseLoss: baseLoss === null || Number.isNaN(baseLoss) ? null : baseLoss, at: step.now }]);
    expected.add(a.agent);
  }
  const agents = m.agents.map((a) => a.agent).sort();
  step.putUpdates(entries);
  const next = step.patchCurrent({ expected: [...expected].sort(), partials: { ...c.partials, [String(m.shard)]: { agents, bytes: m.body.length } } });
  const patches: Record<string, (old: AgentRecord | undefined) => Partial<AgentRecord>> = {};
  for (const a of agents) patches[a] = (rec) => ({ lastSeen: step.now, lastRound: m.round, rounds: (rec?.rounds ?? 0) + 1, lastError: null });
  step.patchAgents(patches);
  step.log('info', 'partial sum accepted', { ...who, samples, bytes: m.body.length });
  if (collectionComplete(next, step.settings.minAgents, shards)) closeCollection(step, 'complete');
}
