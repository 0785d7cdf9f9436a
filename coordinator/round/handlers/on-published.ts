import { ackComplete, finishRound, globalHeader } from '../lifecycle.js';
import type { Step } from '../step.js';

/** The global is out (retained): collect acknowledgements until they are in or their deadline passes. */
export function onPublished(step: Step, e: { round: number; chunks: number; bytes: number }): void {
  const c = step.state.current;
  step.set({ globalChunks: e.chunks });
  if (!c || c.round !== e.round || (c.status !== 'publishing' && c.status !== 'acking')) return;
  const firstTime = c.status === 'publishing';
  const next = step.patchCurrent({
    status: 'acking',
    ackDeadline: firstTime ? step.now + step.settings.ackTimeoutMs : c.ackDeadline,
    bytesOut: c.bytesOut + e.bytes,
  });
  step.set({ lastPublished: { header: globalHeader(step, next), source: next.source } });
  if (ackComplete(next)) finishRound(step);
}
