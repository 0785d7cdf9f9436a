import { closeCollection, finishRound, maybeAnnounce } from '../lifecycle.js';
import type { Step } from '../step.js';

/** The clock moved: close what is past its deadline, announce what is due. */
export function onTick(step: Step): void {
  const c = step.state.current;
  if (!c) return maybeAnnounce(step);
  if (c.status === 'collecting' && step.now >= c.deadline) closeCollection(step, 'deadline');
  else if (c.status === 'acking' && c.ackDeadline !== null && step.now >= c.ackDeadline) {
    step.log('info', 'acknowledgement deadline passed', { round: c.round, acks: Object.keys(c.acks).length });
    finishRound(step);
  }
}
