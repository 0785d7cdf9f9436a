import type { Effect, LogLevel, Reduction } from './events.js';
import type { AckRecord, AgentRecord, CoordinatorState, RoundSettings, RoundState, UpdateRecord } from './state.js';

/**
 * How many entries a map counted by entryCount holds, kept up to date by Step's writes: the
 * agents map of an in-place runner lives for the process, and counting it on every presence
 * before a round (is the quorum online yet?) made taking N presences O(N²).
 */
const entryCounts = new WeakMap<object, number>();

/** The number of keys of one of the state's maps (O(1) after the first call for the runner's own maps). */
export function entryCount(map: Record<string, unknown>): number {
  let n = entryCounts.get(map);
  if (n === undefined) {
    n = Object.keys(map).length;
    entryCounts.set(map, n);
  }
  return n;
}

const newAgent = (now: number): AgentRecord => ({ firstSeen: now, lastSeen: now, state: 'online', reason: null, windows: null, lastRound: null, installed: null, rounds: 0, lastError: null });

/**
 * One reduction in progress: the handlers read `state`, replace parts of it, and queue effects.
 * `durable` is set by every change to the course of a round (current round, session, round
 * counter), which the runner journals.
 *
 * The per-agent maps (agents, a round's updates and acks) hold up to one entry per agent, so
 * copying one per event made a round O(agents²). By default a map is copied once per reduction
 * and the caller's state stays as it was (pure). With `inPlace` (the runner, which owns its state
 * and drops the old one) entries are written into the maps themselves, each write recorded so
 * `undo()` puts them back when the event cannot be journaled; objects other than these maps are
 * still replaced, never mutated.
 */
export class Step {
  state: CoordinatorState;
  readonly effects: Effect[] = [];
  durable = false;
  /** Maps this reduction copied, or made: written into directly, without an undo record. */
  readonly #fresh = new WeakSet<object>();
  readonly #undo: (() => void)[] = [];

  constructor(
    state: CoordinatorState,
    readonly settings: RoundSettings,
    readonly now: number,
    readonly inPlace = false,
  ) {
    this.state = state;
  }

  /** The map to write into: itself in place, else this reduction's copy of it. */
  #writable<V>(map: Record<string, V>): Record<string, V> {
    if (this.inPlace || this.#fresh.has(map)) return map;
    const copy = { ...map };
    this.#fresh.add(copy);
    return copy;
  }

  #put<V>(map: Record<string, V>, key: string, value: V): void {
    const had = Object.hasOwn(map, key);
    if (!this.#fresh.has(map)) {
      const old = map[key];
      this.#undo.push(
        had
          ? () => void (map[key] = old!)
          : () => {
              delete map[key];
              const n = entryCounts.get(map);
              if (n !== undefined) entryCounts.set(map, n - 1);
            },
      );
    }
    map[key] = value;
    const n = entryCounts.get(map);
    if (!had && n !== undefined) entryCounts.set(map, n + 1);
  }

  /** Takes back this reduction's writes into the caller's maps (inPlace only; nothing to undo otherwise). */
  undo(): void {
    for (let i = this.#undo.length - 1; i >= 0; i--) this.#undo[i]!();
    this.#undo.length = 0;
  }

  emit(effect: Effect): void {
    this.effects.push(effect);
  }

  log(level: LogLevel, msg: string, data: Record<string, unknown> = {}): void {
    this.effects.push({ type: 'log', level, msg, data });
  }

  /** Replaces top-level fields; a change of anything but agents, rejections or history is durable. */
  set(patch: Partial<CoordinatorState>): void {
    this.state = { ...this.state, ...patch };
    for (const k of Object.keys(patch)) if (k !== 'agents' && k !== 'rejected') this.durable = true;
  }

  current(): RoundState | null {
    return this.state.current;
  }

  /** Replaces fields of the round in progress (there must be one). */
  patchCurrent(patch: Partial<RoundState>): RoundState {
    const c = this.state.current;
    if (!c) throw new Error('Step.patchCurrent: no round in progress');
    const next = { ...c, ...patch };
    this.set({ current: next });
    return next;
  }

  agent(id: string): AgentRecord | undefined {
    return this.state.agents[id];
  }

  patchAgent(id: string, patch: Partial<AgentRecord>): void {
    const agents = this.#writable(this.state.agents);
    this.#put(agents, id, { ...(agents[id] ?? newAgent(this.now)), ...patch });
    if (agents !== this.state.agents) this.state = { ...this.state, agents };
  }

  /** patchAgent for many agents at once (a partial sum lists thousands). */
  patchAgents(patches: Record<string, (old: AgentRecord | undefined) => Partial<AgentRecord>>): void {
    for (const id in patches) {
      const old = this.state.agents[id];
      this.patchAgent(id, patches[id]!(old));
    }
  }

  /** Records an acknowledgement of the round in progress (durable); returns the round after it. */
  putAck(id: string, ack: AckRecord): RoundState {
    const c = this.current();
    if (!c) throw new Error('Step.putAck: no round in progress');
    const acks = this.#writable(c.acks);
    this.#put(acks, id, ack);
    if (acks !== c.acks) return this.patchCurrent({ acks });
    this.durable = true;
    return c;
  }

  /** Records contributions to the round in progress (durable); returns the round after them. */
  putUpdates(entries: [string, UpdateRecord][]): RoundState {
    const c = this.current();
    if (!c) throw new Error('Step.putUpdates: no round in progress');
    const updates = this.#writable(c.updates);
    for (const [id, u] of entries) this.#put(updates, id, u);
    if (updates !== c.updates) return this.patchCurrent({ updates });
    this.durable = true;
    return c;
  }

  reject(reason: string, msg: string, data: Record<string, unknown>): void {
    this.state = { ...this.state, rejected: { ...this.state.rejected, [reason]: (this.state.rejected[reason] ?? 0) + 1 } };
    const agent = data.agent;
    if (typeof agent === 'string' && this.state.agents[agent]) this.patchAgent(agent, { lastError: `${reason}: ${msg}` });
    this.log('warn', msg, { reason, ...data });
  }

  result(): Reduction {
    return { state: this.state, effects: this.effects, durable: this.durable, undo: () => this.undo() };
  }
}
