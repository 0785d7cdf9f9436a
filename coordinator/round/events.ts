import type { Ack, Announce, GlobalHeader, PartialSum, Presence, Update } from '../../common/protocol/messages.js';
import type { CoordinatorState } from './state.js';

/**
 * What happens to a coordinator (events, the reducer's input) and what it asks the runner to do
 * (effects, its output). Every event carries the clock, so the reducer never reads one. Events
 * that change the course of a round are journaled (journal.ts) and replayed after a restart:
 * the same events through the same reducer give the same state, hence the same global.
 */
export type RoundEvent =
  /** Boot, after the journal was replayed: resume the round in progress or plan the first. */
  | { type: 'start'; now: number }
  | { type: 'tick'; now: number }
  /** The broker connection came back after a loss (it may have lost what it retained). */
  | { type: 'reconnected'; now: number }
  | { type: 'update'; now: number; message: Update }
  /** An aggregator worker's sum of its shard's updates (sharded rounds). */
  | { type: 'partial'; now: number; message: PartialSum }
  | { type: 'ack'; now: number; message: Ack }
  | { type: 'presence'; now: number; message: Presence }
  /** The runner summed the round's stored updates (aggregate file written). */
  | { type: 'aggregated'; now: number; round: number; clients: number; totalSamples: number; bytes: number }
  | { type: 'aggregation-failed'; now: number; round: number; reason: string }
  /** The global is out, as `chunks` retained chunks. */
  | { type: 'published'; now: number; round: number; chunks: number; bytes: number }
  /** An operator's `pause` / `resume` (control socket): announcing new rounds stops / goes on. */
  | { type: 'pause'; now: number }
  | { type: 'resume'; now: number }
  /** The service picked up the next key epoch's coordinator bundle (coordinator.next_keys). */
  | { type: 'keys-offered'; now: number; epoch: number; keyId: string };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Effect =
  /** Publish (retained) the round's announcement. */
  | { type: 'announce'; message: Announce }
  /**
   * Sum these agents' stored updates of `round` and these shards' stored partial sums (both
   * sorted, so the bytes never depend on arrival order), store the aggregate, then dispatch 'aggregated'.
   */
  | { type: 'aggregate'; round: number; agents: string[]; shards?: number[] }
  /** Publish this global (retained chunks) with the aggregate of round `source` as its body (0: an empty body), then dispatch 'published'. */
  | { type: 'publish-global'; header: GlobalHeader; source: number; previousChunks: number }
  /** A round is over: its update bodies are no longer needed; aggregates other than `keepAggregates` may go too. */
  | { type: 'release'; round: number; keepAggregates: number[] }
  /** The state has no round in flight: a good moment for a snapshot (journal compaction). */
  | { type: 'checkpoint' }
  | { type: 'log'; level: LogLevel; msg: string; data: Record<string, unknown> }
  /** Every configured session ran. */
  | { type: 'done' };

export interface Reduction {
  state: CoordinatorState;
  effects: Effect[];
  /** The event changed the course of a round or can change a later one (journal it: every presence); false for bookkeeping only (rejections). */
  durable: boolean;
  /** Takes back what an in-place reduction wrote into the input state's maps (the event could not be journaled). */
  undo(): void;
}
