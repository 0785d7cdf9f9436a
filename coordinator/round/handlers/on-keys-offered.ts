import { maybeAnnounce } from '../lifecycle.js';
import { keysOf } from '../state.js';
import type { Step } from '../step.js';

/**
 * The next key epoch's coordinator bundle was installed (coordinator.next_keys). Only a later
 * epoch than the active one is taken; offering the same one again (every start re-reads the
 * file) changes nothing. The switch itself waits for a session boundary (maybeAnnounce).
 */
export function onKeysOffered(step: Step, e: { epoch: number; keyId: string }): void {
  const keys = keysOf(step.state, step.settings);
  if (e.keyId === keys.active.keyId || (keys.next?.keyId === e.keyId && keys.next.epoch === e.epoch)) return;
  if (e.epoch <= keys.active.epoch) {
    step.log('warn', 'key epoch offered is not newer than the active one; ignored', { epoch: e.epoch, keyId: e.keyId, active: keys.active.epoch });
    return;
  }
  step.set({ keys: { ...keys, next: { epoch: e.epoch, keyId: e.keyId } } });
  step.log('info', 'next key epoch offered; rounds switch to it at the next session once enough agents hold it', { epoch: e.epoch, keyId: e.keyId, active: keys.active.epoch, minAgents: step.settings.minAgents });
  maybeAnnounce(step);
}
