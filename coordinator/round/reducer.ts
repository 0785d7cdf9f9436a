import type { Reduction, RoundEvent } from './events.js';
import { onAck } from './handlers/on-ack.js';
import { onAggregated, onAggregationFailed } from './handlers/on-aggregated.js';
import { onKeysOffered } from './handlers/on-keys-offered.js';
import { onPartial, type PartialCheck } from './handlers/on-partial.js';
import { onPresence } from './handlers/on-presence.js';
import { onPublished } from './handlers/on-published.js';
import { onPause, onResume } from './handlers/on-pause.js';
import { onReconnected } from './handlers/on-reconnected.js';
import { onStart } from './handlers/on-start.js';
import { onTick } from './handlers/on-tick.js';
import { onUpdate, type BodyCheck } from './handlers/on-update.js';
import type { CoordinatorState, RoundSettings } from './state.js';
import { Step } from './step.js';

/**
 * The coordinator's round state machine: (state, event) → (state, effects), with one handler per
 * event type (handlers/) and this one dispatcher. Pure: no clock (events carry it), no I/O (the
 * runner carries out the effects), the input state is never mutated. `checkBody` is the
 * strategy's pure check of an update body (a CKKS frame of the right layout, or plaintext),
 * `checkPartial` its check of a shard's partial sum (sharded rounds; without one, partials are refused).
 * `inPlace` is for an owner that drops the input state: the per-agent maps are written into
 * rather than copied (step.ts), and the reduction's `undo()` takes the writes back.
 */
export function reduce(state: CoordinatorState, event: RoundEvent, settings: RoundSettings, checkBody: BodyCheck, checkPartial: PartialCheck = () => 'this coordinator takes no partial sums', opts: { inPlace?: boolean } = {}): Reduction {
  const step = new Step(state, settings, event.now, opts.inPlace === true);
  switch (event.type) {
    case 'start':
      onStart(step);
      step.durable = true;
      break;
    case 'tick':
      onTick(step);
      break;
    case 'reconnected':
      onReconnected(step);
      break;
    case 'update':
      onUpdate(step, event.message, checkBody);
      break;
    case 'partial':
      onPartial(step, event.message, checkPartial);
      break;
    case 'ack':
      onAck(step, event.message);
      break;
    case 'presence':
      onPresence(step, event.message);
      // Who is online decides whether a round is announced and whom it waits for: a replay
      // without the presences before an announcement would not announce it again.
      step.durable = true;
      break;
    case 'aggregated':
      onAggregated(step, event);
      break;
    case 'aggregation-failed':
      onAggregationFailed(step, event);
      break;
    case 'published':
      onPublished(step, event);
      break;
    case 'pause':
      onPause(step);
      break;
    case 'resume':
      onResume(step);
      break;
    case 'keys-offered':
      onKeysOffered(step, event);
      break;
  }
  return step.result();
}
