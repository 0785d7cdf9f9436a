import type { Global } from '../../../common/protocol/messages.js';
import type { ClientCore } from '../client-core.js';

/**
 * A round's global model (retained chunks). Installed once per round, then acknowledged with
 * this agent's validation report; an announcement waiting for it as its base is answered next.
 */
export async function onGlobal(core: ClientCore, g: Global): Promise<void> {
  if (core.installed.has(g.round)) return;
  core.latestGlobal = g;
  await core.installLatest();
  if (core.waitingFor === g.round) await core.answerCurrent();
}
