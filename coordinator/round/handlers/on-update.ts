import { lossFromWire, type Update } from '../../../common/protocol/messages.js';
import { collectionComplete, closeCollection } from '../lifecycle.js';
import { expectedParams } from '../state.js';
import type { Step } from '../step.js';

/**
 * An agent's contribution. Taken only for the round being collected, once per agent (a second
 * copy is a QoS 1 redelivery or a resend after a reconnect: dropped quietly), within the
 * round's weight cap and Σ n_k bound, and with a body the strategy accepts (validate: a CKKS
 * update frame of the right layout and sample count). Everything else is refused with a reason.
 */
export type BodyCheck = (body: Uint8Array, params: number, samples: number) => string | undefined;

export function onUpdate(step: Step, m: Update, checkBody: BodyCheck): void {
  const c = step.state.current;
  const who = { agent: m.agent, round: m.round, session: m.session, phase: m.phase };
  if (!c || m.round !== c.round || m.session !== c.session) {
    // Rounds below the one in progress (or, between rounds, below the next id) are over; others never were.
    const reason = m.round < (c?.round ?? step.state.nextRound) ? 'stale' : 'unknown-round';
    return step.reject(reason, `update for round ${m.round} refused: ${c ? `round ${c.round} is in progress` : 'no round is in progress'}`, who);
  }
  if (m.agent in c.updates) {
    step.log('debug', 'duplicate update ignored', who);
    return;
  }
  if (c.status !== 'collecting') return step.reject('late', `update for round ${m.round} arrived after its collection closed`, who);
  if (m.phase !== c.phase) return step.reject('wrong-phase', `update of phase ${m.phase} for a ${c.phase} round`, who);
  if (m.codec !== step.settings.codec) return step.reject('wrong-codec', `update encoded as ${m.codec}; this federation uses ${step.settings.codec}`, who);
  if ((m.keyEpoch ?? 0) !== (c.announce.keyEpoch ?? 0)) return step.reject('wrong-key-epoch', `update of key epoch ${m.keyEpoch ?? 0}; round ${c.round} is under key epoch ${c.announce.keyEpoch ?? 0}`, who);
  // Sharded: an agent's update goes to its shard's worker, which lists it in a partial sum.
  if (step.settings.shards > 1 || m.shard !== undefined) return step.reject('wrong-shard', `update sent to the leader in a round of ${step.settings.shards} shard(s)`, who);
  if (m.samples > c.weightCap || m.samples > m.windows) {
    return step.reject('weight', `update claims weight ${m.samples} (windows ${m.windows}); the round allows at most ${c.weightCap}, and no more than its windows`, who);
  }
  let total = 0;
  for (const a in c.updates) total += c.updates[a]!.samples;
  if (total + m.samples > step.settings.maxRoundSamples) {
    return step.reject('sample-budget', `Σ n_k would reach ${total + m.samples}, over the federation's maxRoundSamples ${step.settings.maxRoundSamples}`, who);
  }
  const bad = checkBody(m.body, expectedParams(step.settings, c.phase), m.samples);
  if (bad) return step.reject('bad-body', `update body refused: ${bad}`, who);
  const baseLoss = m.baseLoss === undefined ? null : lossFromWire(m.baseLoss);
  let next = step.putUpdates([[m.agent, { samples: m.samples, windows: m.windows, bytes: m.body.length, baseLoss: baseLoss === null || Number.isNaN(baseLoss) ? null : baseLoss, at: step.now }]]);
  // An agent that answers is expected from now on, whether or not it was online at the announcement.
  if (!next.expected.includes(m.agent)) next = step.patchCurrent({ expected: [...next.expected, m.agent].sort() });
  const rec = step.agent(m.agent);
  step.patchAgent(m.agent, { lastSeen: step.now, lastRound: m.round, rounds: (rec?.rounds ?? 0) + 1, lastError: null, ...(rec ? {} : { state: 'online' as const }) });
  step.log('debug', 'update accepted', { ...who, samples: m.samples, bytes: m.body.length });
  if (collectionComplete(next, step.settings.minAgents, step.settings.shards)) closeCollection(step, 'complete');
}
