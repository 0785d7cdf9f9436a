import { aggregateEffect, maybeAnnounce, publishGlobal } from '../lifecycle.js';
import type { Step } from '../step.js';

/**
 * Boot, once the journal is replayed. The embedded broker keeps nothing across a restart, so the
 * retained announcement and global are published again; a round in progress resumes where its
 * journal left it (collection gets resumeGraceMs more, for agents to resend what the dead
 * process never acknowledged), and the work a dead process left half done is asked for again.
 */
export function onStart(step: Step): void {
  const s = step.state;
  const c = s.current;
  // Not when the round in progress publishes its own global below: it replaces this one at once.
  const publishesOwn = c !== null && (c.round === s.lastPublished?.header.round || c.status === 'publishing' || c.status === 'acking');
  if (s.lastPublished && !publishesOwn) {
    step.emit({ type: 'publish-global', header: s.lastPublished.header, source: s.lastPublished.source, previousChunks: s.globalChunks });
  }
  if (!c) {
    step.log('info', 'coordinator started', { nextRound: s.nextRound, session: s.session?.session ?? null, sessionsDone: s.sessionsDone });
    maybeAnnounce(step);
    return;
  }
  step.log('info', 'resuming round', { round: c.round, phase: c.phase, status: c.status, updates: Object.keys(c.updates).length });
  // Issued anew (a later issuedAt): agents resend what this process may never have received.
  const deadline = c.status === 'collecting' ? Math.max(c.deadline, step.now + step.settings.resumeGraceMs) : c.deadline;
  const announce = { ...c.announce, deadline, issuedAt: step.now };
  step.patchCurrent({ deadline, announce });
  step.emit({ type: 'announce', message: announce });
  if (c.status === 'collecting') return;
  if (c.status === 'aggregating') step.emit(aggregateEffect(c));
  else if (c.status === 'publishing') publishGlobal(step);
  else {
    // acking: the global went out before the restart, but the broker may have lost it.
    publishGlobal(step);
    step.patchCurrent({ ackDeadline: Math.max(c.ackDeadline ?? 0, step.now + step.settings.resumeGraceMs) });
  }
}
