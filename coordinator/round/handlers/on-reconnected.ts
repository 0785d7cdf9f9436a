import { publishGlobal } from '../lifecycle.js';
import type { Step } from '../step.js';

/**
 * The broker connection came back after a loss. A broker that restarted without persistence
 * has lost the retained announcement and global, and what agents published while the
 * coordinator was away is gone: both are published again, the announcement issued anew (a
 * later issuedAt), so agents answer it (one that never saw it) or resend their answer (the
 * coordinator drops what it already has), and collection gets resumeGraceMs more for that, as
 * after a restart (on-start.ts). Work in flight (a sum, a global being published) carries on.
 */
export function onReconnected(step: Step): void {
  const s = step.state;
  const c = s.current;
  // Not when the round in progress republishes its own global below: it replaces this one at once.
  const publishesOwn = c !== null && (c.round === s.lastPublished?.header.round || c.status === 'publishing' || c.status === 'acking');
  if (s.lastPublished && !publishesOwn) {
    step.emit({ type: 'publish-global', header: s.lastPublished.header, source: s.lastPublished.source, previousChunks: s.globalChunks });
  }
  step.log('info', 'broker reconnected; retained round state published again', { round: c?.round ?? null, status: c?.status ?? null, lastGlobal: s.lastPublished?.header.round ?? null });
  if (!c) return;
  const deadline = c.status === 'collecting' ? Math.max(c.deadline, step.now + step.settings.resumeGraceMs) : c.deadline;
  const announce = { ...c.announce, deadline, issuedAt: step.now };
  step.patchCurrent({ deadline, announce });
  step.emit({ type: 'announce', message: announce });
  if (c.status === 'acking') {
    // The global went out before the loss; the broker may have lost it.
    publishGlobal(step);
    step.patchCurrent({ ackDeadline: Math.max(c.ackDeadline ?? 0, step.now + step.settings.resumeGraceMs) });
  }
}
