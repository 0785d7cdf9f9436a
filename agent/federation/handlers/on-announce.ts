import type { Announce } from '../../../common/protocol/messages.js';
import type { ClientCore } from '../client-core.js';

/**
 * A round announcement (retained: also what a (re)connecting agent finds). Answers it once:
 * the update (kept, so a resend after a reconnect is the same bytes), or a presence saying why
 * not. An announcement that needs a global this agent has not installed waits for it.
 */
export async function onAnnounce(core: ClientCore, a: Announce): Promise<void> {
  const last = core.announce;
  if (last && a.round < last.round) return;
  if (last && a.round === last.round && core.answered.has(a.round)) {
    // Issued anew: the coordinator restarted and may have lost what this agent sent meanwhile.
    const reissued = a.issuedAt > last.issuedAt;
    core.announce = a;
    if (reissued) await core.resend(a);
    return;
  }
  core.announce = a;
  await core.answerCurrent();
}
