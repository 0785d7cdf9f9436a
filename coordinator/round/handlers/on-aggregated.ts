import { abandon, publishGlobal } from '../lifecycle.js';
import type { Step } from '../step.js';

/** The runner summed the round's updates (the aggregate is stored): publish it. */
export function onAggregated(step: Step, e: { round: number; clients: number; totalSamples: number; bytes: number }): void {
  const c = step.state.current;
  if (!c || c.round !== e.round || c.status !== 'aggregating') return;
  step.patchCurrent({ status: 'publishing', global: { clients: e.clients, totalSamples: e.totalSamples, bytes: e.bytes, aggregatedAt: step.now } });
  step.log('info', 'aggregated', { round: e.round, clients: e.clients, totalSamples: e.totalSamples, bytes: e.bytes });
  publishGlobal(step);
}

/** The sum failed (a stored update the strategy now refuses): nothing to publish, the round is lost. */
export function onAggregationFailed(step: Step, e: { round: number; reason: string }): void {
  const c = step.state.current;
  if (!c || c.round !== e.round || c.status !== 'aggregating') return;
  abandon(step, `aggregation failed: ${e.reason}`);
}
