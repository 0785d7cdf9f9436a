import type { Effect, LogLevel, Reduction } from './events.js';
import type { AgentRecord, CoordinatorState, RoundSettings, RoundState } from './state.js';

/**
 * One reduction in progress: the handlers read `state`, replace parts of it (never mutate: the
 * caller's state object stays as it was), and queue effects. `durable` is set by every change
 * to the course of a round (current round, session, round counter), which the runner journals.
 */
export class Step {
  state: CoordinatorState;
  readonly effects: Effect[] = [];
  durable = false;

  constructor(
    state: CoordinatorState,
    readonly settings: RoundSettings,
    readonly now: number,
  ) {
    this.state = state;
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
    const old = this.state.agents[id] ?? { firstSeen: this.now, lastSeen: this.now, state: 'online', reason: null, windows: null, lastRound: null, installed: null, rounds: 0, lastError: null };
    this.state = { ...this.state, agents: { ...this.state.agents, [id]: { ...old, ...patch } } };
  }

  /** patchAgent for many agents at once: one copy of the agents map, not one per agent (a partial sum lists thousands). */
  patchAgents(patches: Record<string, (old: AgentRecord | undefined) => Partial<AgentRecord>>): void {
    const agents = { ...this.state.agents };
    for (const id in patches) {
      const old = agents[id];
      const base = old ?? { firstSeen: this.now, lastSeen: this.now, state: 'online' as const, reason: null, windows: null, lastRound: null, installed: null, rounds: 0, lastError: null };
      agents[id] = { ...base, ...patches[id]!(old) };
    }
    this.state = { ...this.state, agents };
  }

  reject(reason: string, msg: string, data: Record<string, unknown>): void {
    this.state = { ...this.state, rejected: { ...this.state.rejected, [reason]: (this.state.rejected[reason] ?? 0) + 1 } };
    const agent = data.agent;
    if (typeof agent === 'string' && this.state.agents[agent]) this.patchAgent(agent, { lastError: `${reason}: ${msg}` });
    this.log('warn', msg, { reason, ...data });
  }

  result(): Reduction {
    return { state: this.state, effects: this.effects, durable: this.durable };
  }
}
