import { EventEmitter } from 'node:events';
import { IcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Message } from '../../common/protocol/messages.js';
import type { Messenger } from '../../common/transport/messenger.js';
import type { AggregationStrategy } from '../strategy/aggregation.js';
import type { Effect, RoundEvent } from './events.js';
import { partialBodyKey, type RoundJournal } from './journal.js';
import { reduce } from './reducer.js';
import { expectedParams, initialState, keysOf, type CoordinatorState, type RoundSettings, type RoundStatus, type RoundSummary } from './state.js';

/**
 * Joins the pure round state machine (reducer.ts) to the world: inbound messages and a clock
 * become events, processed one at a time; each event that changes a round's course is journaled
 * (journal.ts) before its effects run and before the message is acknowledged (the transport
 * sends the PUBACK when the handler returns); effects are carried out here: publishing, summing
 * through the strategy (coordinator/strategy, pure maths), snapshots. Work that produces a new
 * event (a sum, a publish) is queued behind the current one, never awaited inside it.
 *
 * Emits 'round' (RoundSummary) when a round ends, 'stage' (StageChange) when the round in
 * progress moves on (collecting → aggregating → publishing → acking, or ends), and 'done' when
 * every configured session ran.
 */
export interface RunnerOptions {
  settings: RoundSettings;
  messenger: Messenger;
  journal: RoundJournal;
  strategy: AggregationStrategy;
  /** Key rotation: the strategy of a key epoch's bundle (by keyId); each round's bodies are checked and summed with its own. Default: `strategy` for every key. */
  strategyFor?: (keyId: string) => AggregationStrategy | undefined;
  logger: Logger;
  clock?: () => number;
  /** How often the clock is looked at (deadlines, presence); default 250 ms. */
  tickMs?: number;
}

/** Where the round in progress stood before and after an event (null: no round), at the event's time. */
export interface StageChange {
  from: { round: number; status: RoundStatus } | null;
  to: { round: number; status: RoundStatus } | null;
  at: number;
}

export class RoundRunner extends EventEmitter {
  readonly #o: RunnerOptions;
  readonly #now: () => number;
  #state: CoordinatorState;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastSummaryRound = 0;
  readonly finished: Promise<void>;
  #finish!: () => void;

  constructor(o: RunnerOptions) {
    super();
    this.#o = o;
    this.#now = o.clock ?? Date.now;
    this.#state = initialState(o.settings, this.#now());
    this.finished = new Promise((resolve) => (this.#finish = resolve));
  }

  get state(): CoordinatorState {
    return this.#state;
  }

  /** Rebuilds the state from the journal, then resumes (or plans the first round) and starts the clock. */
  async start(): Promise<void> {
    const { settings, journal, logger } = this.#o;
    const loaded = journal.load();
    const now = this.#now();
    // Without a snapshot the journal starts with the first 'start' event: the state it replays
    // over must be the one that start saw (nextAt = its time), or the replayed events, all
    // earlier than now, would find the first announcement not yet due.
    let state = loaded.snapshot ?? initialState(settings, loaded.events[0]?.now ?? now);
    if (state.federation !== settings.federation) {
      throw new IcosflError('CONFIG_INVALID', `the coordinator state belongs to federation '${state.federation}', the config names '${settings.federation}'; use another state_dir`);
    }
    for (const e of loaded.events) state = reduce(state, e, settings, this.#checkBody(state), this.#checkPartial(state), { inPlace: true }).state;
    if (state.configHash !== settings.configHash) {
      // Rounds of the old model cannot be finished with the new one: the session starts over.
      logger.warn({ old: state.configHash, new: settings.configHash }, 'the model configuration changed; the session in progress ends and a new one starts');
      state = { ...state, configHash: settings.configHash, current: null, session: null, lastPublished: null, nextAt: now };
      journal.checkpoint(state);
    }
    if (state.done && (settings.sessions === 0 || state.sessionsDone < settings.sessions)) {
      // More sessions were configured since the last one ended: the federation goes on.
      state = { ...state, done: false, nextAt: this.#now() };
    }
    if (loaded.events.length > 0) logger.info({ events: loaded.events.length, round: state.current?.round ?? null }, 'journal replayed');
    // Key rotation: rounds run under the journal's active epoch, whose bundle must be at hand.
    const active = keysOf(state, settings).active;
    if (settings.codec === 'ckks' && !this.#strategyOf(active.keyId)) {
      throw new IcosflError('CRYPTO_KEY_INVALID', `the federation's rounds run under key epoch ${active.epoch} (key ${active.keyId}), which is in neither coordinator.keys nor coordinator.next_keys; install that epoch's coordinator.json as one of them`);
    }
    this.#state = state;
    this.#lastSummaryRound = state.history.at(-1)?.round ?? 0;
    this.#o.messenger.onMessage((m) => this.#inbound(m));
    await this.dispatch({ type: 'start', now });
    const tick = () => {
      if (this.#stopped) return;
      void this.dispatch({ type: 'tick', now: this.#now() });
      this.#timer = setTimeout(tick, this.#o.tickMs ?? 250);
    };
    this.#timer = setTimeout(tick, this.#o.tickMs ?? 250);
  }

  /** The strategy of a round's key (its announcement's keyId). */
  #strategyOf(keyId: string): AggregationStrategy | undefined {
    return this.#o.strategyFor ? this.#o.strategyFor(keyId) : this.#o.strategy;
  }

  /** The reducer checks bodies of the round in progress only, under that round's key. */
  #checkBody(state: CoordinatorState): (b: Uint8Array, p: number, s: number) => string | undefined {
    return (b, p, s) => {
      const keyId = state.current?.announce.keyId ?? '';
      const strategy = this.#strategyOf(keyId);
      return strategy ? strategy.checkBody(b, p, s) : `this coordinator has no bundle of key ${keyId} (coordinator.keys, coordinator.next_keys)`;
    };
  }

  /** Partial sums are checked like bodies: against the bundle of the key the round is under. */
  #checkPartial(state: CoordinatorState): (b: Uint8Array, p: number, c: number, s: number) => string | undefined {
    return (b, p, c, s) => {
      const keyId = state.current?.announce.keyId ?? '';
      const strategy = this.#strategyOf(keyId);
      return strategy ? strategy.checkPartial(b, p, c, s) : `this coordinator has no bundle of key ${keyId} (coordinator.keys, coordinator.next_keys)`;
    };
  }

  #inbound(m: Message): Promise<void> {
    const now = this.#now();
    if (m.type === 'update') return this.dispatch({ type: 'update', now, message: m });
    if (m.type === 'ack') return this.dispatch({ type: 'ack', now, message: m });
    if (m.type === 'presence') return this.dispatch({ type: 'presence', now, message: m });
    if (m.type === 'partial') return this.dispatch({ type: 'partial', now, message: m });
    // announce/global: the messenger only takes the agents' types, so this is a bug.
    this.#o.logger.error({ type: m.type }, 'coordinator received a coordinator message');
    return Promise.resolve();
  }

  /** The broker connection came back after a loss: what the broker retained is published again (handlers/on-reconnected.ts). */
  reconnected(): Promise<void> {
    return this.dispatch({ type: 'reconnected', now: this.#now() });
  }

  /** An operator's pause / resume (handlers/on-pause.ts): resolves once journaled; returns the state after it. */
  async pause(): Promise<CoordinatorState> {
    await this.dispatch({ type: 'pause', now: this.#now() });
    return this.#state;
  }

  async resume(): Promise<CoordinatorState> {
    await this.dispatch({ type: 'resume', now: this.#now() });
    return this.#state;
  }

  /** Queues an event; resolves once it is journaled and its effects have run. */
  dispatch(event: RoundEvent): Promise<void> {
    const run = this.#chain.then(() => this.#process(event));
    this.#chain = run.catch((err) => this.#o.logger.error({ err, event: event.type }, 'round event failed'));
    return run;
  }

  async #process(event: RoundEvent): Promise<void> {
    if (this.#stopped) return;
    const { settings, journal } = this.#o;
    // In place: the runner owns its state (step.ts); an event that cannot be journaled is undone.
    const r = reduce(this.#state, event, settings, this.#checkBody(this.#state), this.#checkPartial(this.#state), { inPlace: true });
    if (r.durable) {
      try {
        // Presences and acknowledgements come by the thousand and only feed later decisions: their
        // fdatasyncs are grouped, and every announcement and global waits for them (D19).
        journal.append(event, event.type === 'presence' || event.type === 'ack');
      } catch (err) {
        r.undo();
        throw err;
      }
    }
    const before = this.#state.current;
    this.#state = r.state;
    const after = r.state.current;
    if (before?.round !== after?.round || before?.status !== after?.status) {
      const change: StageChange = { from: before ? { round: before.round, status: before.status } : null, to: after ? { round: after.round, status: after.status } : null, at: event.now };
      this.emit('stage', change);
    }
    for (const e of r.effects) await this.#effect(e);
    for (const h of this.#state.history) {
      if (h.round <= this.#lastSummaryRound) continue;
      this.#lastSummaryRound = h.round;
      this.emit('round', h satisfies RoundSummary);
    }
  }

  async #effect(e: Effect): Promise<void> {
    const { messenger, journal, logger, settings } = this.#o;
    switch (e.type) {
      case 'log':
        logger[e.level](e.data, e.msg);
        return;
      case 'announce':
        journal.sync();
        await messenger.send(e.message);
        return;
      case 'checkpoint':
        journal.checkpoint(this.#state);
        return;
      case 'release':
        journal.release(e.round, e.keepAggregates);
        return;
      case 'done':
        this.emit('done');
        this.#finish();
        return;
      case 'aggregate':
        // Behind the current event: its result is an event of its own.
        void this.#later(async () => {
          const c = this.#state.current;
          if (!c || c.round !== e.round) return;
          const params = expectedParams(settings, c.phase);
          const started = performance.now();
          try {
            const bodies = journal.updateBodies(e.round, e.agents);
            const keyStrategy = this.#strategyOf(c.announce.keyId);
            if (!keyStrategy) throw new IcosflError('CRYPTO_PARAMS_MISMATCH', `no bundle of key ${c.announce.keyId} (epoch ${c.announce.keyEpoch ?? 0}) to sum round ${e.round} with`);
            const inputs = bodies.map((body, i) => ({ body, samples: c.updates[e.agents[i]!]!.samples }));
            // Sharded: each shard's partial sum (the accumulator adds aggregates as it adds updates).
            const shards = e.shards ?? [];
            const partials = journal.updateBodies(e.round, shards.map(partialBodyKey));
            partials.forEach((body, i) => inputs.push({ body, samples: c.partials![String(shards[i])]!.agents.reduce((s, a) => s + c.updates[a]!.samples, 0) }));
            const sum = keyStrategy.aggregate(inputs, params);
            journal.putAggregate(e.round, sum.bytes);
            logger.debug({ round: e.round, ms: performance.now() - started }, 'sum computed');
            await this.dispatch({ type: 'aggregated', now: this.#now(), round: e.round, clients: sum.clients, totalSamples: sum.totalSamples, bytes: sum.bytes.length });
          } catch (err) {
            logger.error({ err, round: e.round }, 'aggregation failed');
            await this.dispatch({ type: 'aggregation-failed', now: this.#now(), round: e.round, reason: (err as Error).message });
          }
        });
        return;
      case 'publish-global':
        void this.#later(async () => {
          const body = e.source > 0 ? journal.getAggregate(e.source) : new Uint8Array(0);
          if (!body) {
            logger.error({ round: e.header.round, source: e.source }, 'the aggregate to publish is missing from the state directory');
            return;
          }
          try {
            journal.sync();
            const sent = await messenger.sendGlobal({ ...e.header, body }, e.previousChunks);
            await this.dispatch({ type: 'published', now: this.#now(), round: e.header.round, chunks: sent.chunks, bytes: sent.bytes });
          } catch (err) {
            // The broker is away: the transport reconnects, and the next start (or the agents' catch-up) republishes.
            logger.warn({ err, round: e.header.round }, 'publishing the global failed; retrying in 2 s');
            setTimeout(() => void this.#effect(e), 2000).unref();
          }
        });
        return;
    }
  }

  /** Runs fn after the event being processed (not inside it: its result is dispatched as a new event). */
  #later(fn: () => Promise<void>): Promise<void> {
    return new Promise((resolve) => setImmediate(() => void fn().finally(resolve)));
  }

  /** Stops the clock and waits for the event in progress; the journal is closed by its owner. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#chain;
  }
}
