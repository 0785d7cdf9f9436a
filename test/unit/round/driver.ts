import * as assert from 'uvu/assert';
import { encodeMessage } from '../../../common/protocol/frame.js';
import { parseFederationModel } from '../../../common/protocol/federation-model.js';
import { ackFor, lossToWire, updateFor, type Ack, type Announce, type GlobalHeader, type Phase, type PresenceState, type Update } from '../../../common/protocol/messages.js';
import type { Effect, Reduction, RoundEvent } from '../../../coordinator/round/events.js';
import type { BodyCheck } from '../../../coordinator/round/handlers/on-update.js';
import { MemoryJournal, type RoundJournal } from '../../../coordinator/round/journal.js';
import { reduce } from '../../../coordinator/round/reducer.js';
import { initialState, makeSettings, type CoordinatorState, type RoundSettings, type SettingsInput } from '../../../coordinator/round/state.js';
import { plaintextStrategy } from '../../../coordinator/strategy/aggregation.js';

/**
 * A runner-free driver of the round reducer for tests: no timers, no sockets. It feeds events
 * at a clock the test moves, deep-freezes every state it hands to reduce (so a mutation throws),
 * journals the durable events (MemoryJournal unless given another) and carries out the
 * 'aggregate' and 'publish-global' effects only when asked (runEffects), as the runner would.
 */
export const MODEL = parseFederationModel({ metrics: ['cpu'], rounds: 2, ridgeFeatures: 8, lookback: 4, horizon: 2, hiddenUnits: 3 });

/** Sizes the settings below give (federation-model.test.ts checks the formulas against the agent). */
export const FEDAVG_PARAMS = 29;
export const RIDGE_PARAMS = 102;

export const TIMING = {
  roundTimeoutMs: 1000,
  ackTimeoutMs: 500,
  roundIntervalMs: 100,
  sessionIntervalMs: 10_000,
  presenceTimeoutMs: 90_000,
  resumeGraceMs: 300,
} as const;

export function testSettings(over: Partial<SettingsInput> = {}): RoundSettings {
  return makeSettings({ federation: 't', codec: 'plaintext', keyId: '', model: MODEL, minAgents: 2, maxRoundSamples: 1e6, sessions: 1, ...TIMING, ...over });
}

export const checkBody: BodyCheck = (body, params, samples) => plaintextStrategy().checkBody(body, params, samples);

/** Recursively freezes plain objects and arrays (typed arrays cannot be frozen and are skipped). */
export function deepFreeze<T>(x: T): T {
  if (x === null || typeof x !== 'object' || ArrayBuffer.isView(x) || Object.isFrozen(x)) return x;
  Object.freeze(x);
  for (const v of Object.values(x as object)) deepFreeze(v);
  return x;
}

export function bodyOf(params: number, fill = 0.25): Uint8Array {
  return new Uint8Array(new Float32Array(params).fill(fill).buffer);
}

export interface UpdateOptions {
  samples?: number;
  windows?: number;
  baseLoss?: number;
  body?: Uint8Array;
  round?: number;
  session?: number;
  phase?: Phase;
  codec?: 'ckks' | 'plaintext';
}

export class Driver {
  state: CoordinatorState;
  now: number;
  readonly settings: RoundSettings;
  journal: RoundJournal;
  /** Every effect emitted, in order. */
  readonly effects: Effect[] = [];
  /** aggregate / publish-global effects not yet carried out. */
  readonly pending: Effect[] = [];
  last: Reduction | undefined;

  constructor(settings = testSettings(), opts: { now?: number; journal?: RoundJournal; state?: CoordinatorState } = {}) {
    this.settings = settings;
    this.now = opts.now ?? 0;
    this.journal = opts.journal ?? new MemoryJournal();
    this.state = opts.state ?? initialState(settings, this.now);
  }

  /** Reduces one event against a frozen copy of the state, journals it when durable, queues the work effects. */
  feed(event: RoundEvent): Reduction {
    const input = deepFreeze(this.state);
    const before = structuredClone(input);
    const r = reduce(input, event, this.settings, checkBody);
    assert.equal(input, before, `reduce changed its input on ${event.type}`);
    if (r.durable) this.journal.append(event);
    this.state = r.state;
    this.last = r;
    for (const e of r.effects) {
      this.effects.push(e);
      if (e.type === 'aggregate' || e.type === 'publish-global') this.pending.push(e);
      if (e.type === 'checkpoint') this.journal.checkpoint(this.state);
      // Whatever the reducer asks to put on the wire must pass the wire's own checks.
      if (e.type === 'announce') encodeMessage(e.message);
      if (e.type === 'publish-global') encodeMessage({ ...e.header, body: new Uint8Array(0) });
    }
    return r;
  }

  at(now: number): this {
    this.now = now;
    return this;
  }

  advance(ms: number): this {
    this.now += ms;
    return this;
  }

  start(): Reduction {
    return this.feed({ type: 'start', now: this.now });
  }

  tick(): Reduction {
    return this.feed({ type: 'tick', now: this.now });
  }

  presence(agent: string, state: PresenceState = 'online', extra: { windows?: number; reason?: string } = {}): Reduction {
    return this.feed({ type: 'presence', now: this.now, message: { type: 'presence', federation: 't', agent, state, at: this.now, ...extra } });
  }

  /** The announcement of the round in progress. */
  announce(): Announce {
    const c = this.state.current;
    if (!c) throw new Error('Driver: no round in progress');
    return c.announce;
  }

  updateMessage(agent: string, o: UpdateOptions = {}): Update {
    const a = this.announce();
    const phase = o.phase ?? a.phase;
    const params = phase === 'ridge' ? RIDGE_PARAMS : FEDAVG_PARAMS;
    const samples = o.samples ?? 10;
    const u = updateFor({ ...a, phase: a.phase === 'final' ? 'fedavg' : a.phase }, agent, {
      samples,
      windows: o.windows ?? Math.max(samples, 20),
      body: o.body ?? bodyOf(params),
      ...(o.baseLoss !== undefined ? { baseLoss: lossToWire(o.baseLoss) } : {}),
    });
    return { ...u, phase: phase as 'ridge' | 'fedavg', ...(o.round !== undefined ? { round: o.round } : {}), ...(o.session !== undefined ? { session: o.session } : {}), ...(o.codec ? { codec: o.codec } : {}) };
  }

  update(agent: string, o: UpdateOptions = {}): Reduction {
    return this.feed({ type: 'update', now: this.now, message: this.updateMessage(agent, o) });
  }

  /** The header of the global the round in progress publishes (or published). */
  globalHeader(): GlobalHeader {
    for (let i = this.effects.length - 1; i >= 0; i--) {
      const e = this.effects[i]!;
      if (e.type === 'publish-global' && e.header.round === this.state.current?.round) return e.header;
    }
    throw new Error('Driver: the round in progress published no global');
  }

  ackMessage(agent: string, fields: { ok?: boolean; loss?: number; ridgeLosses?: (number | null)[][]; reason?: string; round?: number; phase?: Phase } = {}): Ack {
    const g = this.globalHeader();
    const ack = ackFor(g, agent, {
      ok: fields.ok ?? true,
      ...(fields.loss !== undefined ? { loss: lossToWire(fields.loss) } : {}),
      ...(fields.ridgeLosses ? { ridgeLosses: fields.ridgeLosses.map((row) => row.map((x) => (x === null ? null : lossToWire(x)))) } : {}),
      ...(fields.reason ? { reason: fields.reason } : {}),
    });
    return { ...ack, ...(fields.round !== undefined ? { round: fields.round } : {}), ...(fields.phase ? { phase: fields.phase } : {}) };
  }

  ack(agent: string, fields: Parameters<Driver['ackMessage']>[1] = {}): Reduction {
    return this.feed({ type: 'ack', now: this.now, message: this.ackMessage(agent, fields) });
  }

  /** Carries out the queued aggregate / publish-global effects (and those they lead to). */
  runEffects(opts: { bytes?: number; chunks?: number } = {}): void {
    while (this.pending.length > 0) {
      const e = this.pending.shift()!;
      if (e.type === 'aggregate') {
        const c = this.state.current!;
        const totalSamples = e.agents.reduce((a, id) => a + c.updates[id]!.samples, 0);
        this.feed({ type: 'aggregated', now: this.now, round: e.round, clients: e.agents.length, totalSamples, bytes: opts.bytes ?? 4 * FEDAVG_PARAMS });
      } else if (e.type === 'publish-global') {
        this.feed({ type: 'published', now: this.now, round: e.header.round, chunks: opts.chunks ?? 1, bytes: opts.bytes ?? 200 });
      }
    }
  }

  /** Effects of the last reduction of a type. */
  lastEffects<T extends Effect['type']>(type: T): Extract<Effect, { type: T }>[] {
    return (this.last?.effects ?? []).filter((e): e is Extract<Effect, { type: T }> => e.type === type);
  }

  /** Every agent updates the round in progress with these options; effects run; then every contributor acks. */
  playRound(agents: string[], o: { update?: (agent: string) => UpdateOptions; ack?: (agent: string) => Parameters<Driver['ackMessage']>[1] } = {}): number {
    const round = this.state.current!.round;
    if (this.state.current!.phase !== 'final') for (const a of agents) this.update(a, o.update?.(a) ?? {});
    this.runEffects();
    for (const a of agents) if (this.state.current?.round === round) this.ack(a, o.ack?.(a) ?? {});
    return round;
  }
}

/** Replays a journal the way the runner's start() does (before its 'start' event). */
export function rebuild(journal: RoundJournal, settings: RoundSettings, firstNow: number): CoordinatorState {
  const loaded = journal.load();
  let state = loaded.snapshot ?? initialState(settings, loaded.events[0]?.now ?? firstNow);
  for (const e of loaded.events) state = reduce(state, e, settings, checkBody).state;
  return state;
}
