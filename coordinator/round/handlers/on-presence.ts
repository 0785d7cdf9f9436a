import type { Presence } from '../../../common/protocol/messages.js';
import { closeCollection, collectionComplete, maybeAnnounce } from '../lifecycle.js';
import type { Step } from '../step.js';

/**
 * Presence (and the last will, 'offline'): the coordinator's view of who is there. An expected
 * agent that says it cannot take part stops being waited for; one that comes online during a
 * collection is waited for too; the first round of a session waits for the quorum to be online.
 */
export function onPresence(step: Step, m: Presence): void {
  const old = step.agent(m.agent);
  step.patchAgent(m.agent, {
    lastSeen: step.now,
    state: m.state,
    reason: m.reason ?? null,
    ...(m.windows !== undefined ? { windows: m.windows } : {}),
    ...(m.installed !== undefined ? { installed: m.installed } : {}),
    ...(m.keys !== undefined ? { keyIds: m.keys } : {}),
  });
  if (!old || old.state !== m.state) step.log(m.state === 'offline' ? 'warn' : 'info', 'agent presence', { agent: m.agent, state: m.state, reason: m.reason ?? null });
  const c = step.state.current;
  if (!c) return maybeAnnounce(step);
  if (c.status !== 'collecting' || m.agent in c.updates) return;
  const taking = m.state === 'online' || m.state === 'busy';
  const expected = c.expected.includes(m.agent);
  if (taking && !expected) step.patchCurrent({ expected: [...c.expected, m.agent].sort() });
  else if (!taking && expected) {
    const next = step.patchCurrent({ expected: c.expected.filter((a) => a !== m.agent) });
    if (collectionComplete(next, step.settings.minAgents)) closeCollection(step, 'complete');
  }
}
