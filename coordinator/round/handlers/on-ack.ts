import { lossFromWire, type Ack } from '../../../common/protocol/messages.js';
import { ackComplete, finishRound } from '../lifecycle.js';
import type { Step } from '../step.js';

/** An agent installed (or could not install) the round's global, and reports how it validates. */
export function onAck(step: Step, m: Ack): void {
  const c = step.state.current;
  const who = { agent: m.agent, round: m.round, phase: m.phase };
  if (!c || m.round !== c.round || m.session !== c.session || (c.status !== 'acking' && c.status !== 'publishing')) {
    // An acknowledgement of a round already finished (after its ack deadline) changes nothing.
    step.log('debug', 'acknowledgement for no open round ignored', who);
    return;
  }
  if (m.agent in c.acks) return;
  if (m.phase !== c.phase) return step.reject('wrong-phase', `acknowledgement of phase ${m.phase} for a ${c.phase} round`, who);
  const loss = m.loss === undefined ? null : lossFromWire(m.loss);
  const ridgeLosses = m.ridgeLosses?.map((row) => row.map((x) => {
    const v = lossFromWire(x);
    return Number.isNaN(v) ? null : v;
  }));
  const next = step.putAck(m.agent, { ok: m.ok, ...(m.reason ? { reason: m.reason } : {}), loss: loss === null || Number.isNaN(loss) ? null : loss, ...(ridgeLosses ? { ridgeLosses } : {}), at: step.now });
  step.patchAgent(m.agent, { lastSeen: step.now, ...(m.ok ? { installed: m.round, lastError: null } : { lastError: `could not install round ${m.round}: ${m.reason ?? 'no reason given'}` }) });
  if (!m.ok) step.log('warn', 'agent could not install the global', { ...who, reason: m.reason ?? null });
  if (next.status === 'acking' && ackComplete(next)) finishRound(step);
}
