import { maybeAnnounce } from '../lifecycle.js';
import type { Step } from '../step.js';

/**
 * An operator paused the federation: no new round is announced (maybeAnnounce checks `paused`);
 * the round in progress runs to its end, so no agent's answer is wasted. Pausing again changes
 * nothing (the first time is kept). Durable through step.set, so a restart stays paused.
 */
export function onPause(step: Step): void {
  const s = step.state;
  if (s.paused) return;
  step.set({ paused: { at: step.now } });
  step.log('info', 'federation paused: no new round is announced until resume', { round: s.current?.round ?? null, status: s.current?.status ?? null });
}

/** Rounds are announced again; the next one is due at once if its time already came. */
export function onResume(step: Step): void {
  const s = step.state;
  if (!s.paused) return;
  step.set({ paused: null });
  step.log('info', 'federation resumed', { pausedMs: step.now - s.paused.at });
  maybeAnnounce(step);
}
