import type { Logger } from '../../common/log.js';
import type { Ack, Announce, Global, Presence, PresenceState } from '../../common/protocol/messages.js';
import type { Messenger } from '../../common/transport/messenger.js';
import type { FederatedModel } from './federated-model.js';
import type { Participant } from './participant.js';

/**
 * What the agent's message handlers (handlers/) share: the participant, the messenger to answer
 * through, and what this agent has seen and done in the federation.
 */
export interface ClientHooks {
  /** A session's model is ready (the daemon saves it and forecasts with it). */
  onModel?: (fm: FederatedModel) => void;
}

export class ClientCore {
  announce: Announce | undefined;
  latestGlobal: Global | undefined;
  /** Rounds answered (update sent or presence said why not) and globals installed. */
  readonly answered = new Set<number>();
  readonly installed = new Set<number>();
  /** Acknowledgements sent, by round: resent when the coordinator re-announces after a restart. */
  readonly acks = new Map<number, Ack>();
  /** Round id of the global the current announcement waits for. */
  waitingFor: number | undefined;
  lastRound: number | undefined;
  lastInstalled: number | undefined;
  presenceState: PresenceState = 'online';
  presenceReason: string | undefined;
  lastError: string | undefined;

  constructor(
    readonly agent: string,
    readonly federation: string,
    readonly participant: Participant,
    readonly messenger: Messenger,
    readonly logger: Logger,
    readonly hooks: ClientHooks,
    readonly software: string,
    readonly now: () => number,
  ) {}

  presence(state: PresenceState = this.presenceState, reason = this.presenceReason, windows?: number): Presence {
    const keys = this.participant.keyIds();
    return {
      type: 'presence',
      federation: this.federation,
      agent: this.agent,
      state,
      ...(reason ? { reason: reason.slice(0, 500) } : {}),
      ...(windows !== undefined ? { windows } : {}),
      ...(this.lastRound !== undefined ? { lastRound: this.lastRound } : {}),
      ...(this.lastInstalled !== undefined ? { installed: this.lastInstalled } : {}),
      software: this.software,
      ...(keys.length > 0 ? { keys: keys.slice(0, 4) } : {}),
      at: this.now(),
    };
  }

  async sendPresence(state: PresenceState, reason?: string, windows?: number): Promise<void> {
    this.presenceState = state;
    this.presenceReason = reason;
    await this.messenger.send(this.presence(state, reason, windows));
  }

  /** Answers the current announcement (again, after a reconnect: the same update bytes). */
  async answerCurrent(): Promise<void> {
    const a = this.announce;
    if (!a) return;
    this.waitingFor = undefined;
    let answer = await this.participant.answer(a);
    if (answer.kind === 'wait' && this.latestGlobal?.round === answer.base && !this.installed.has(answer.base)) {
      await this.installLatest();
      answer = await this.participant.answer(a);
    }
    if (answer.kind === 'wait') {
      this.waitingFor = answer.base;
      this.logger.info({ round: a.round, base: answer.base }, 'announcement waits for its base global');
      return;
    }
    this.answered.add(a.round);
    this.prune(a.round);
    if (answer.kind === 'update') {
      await this.messenger.send(answer.update);
      this.lastRound = a.round;
      if (this.presenceState !== 'online') await this.sendPresence('online');
      this.logger.debug({ round: a.round, phase: a.phase, samples: answer.update.samples, bytes: answer.update.body.length }, 'update sent');
    } else if (answer.kind === 'presence') {
      this.logger.info({ round: a.round, state: answer.state, reason: answer.reason }, 'not taking part in this round');
      await this.sendPresence(answer.state, answer.reason, answer.windows);
    }
    // A final round has no update: its global comes next.
  }

  /** What a coordinator that restarted may have missed: this round's update and acknowledgement, sent again (it drops duplicates). */
  async resend(a: Announce): Promise<void> {
    this.answered.delete(a.round);
    if (a.phase !== 'final') await this.answerCurrent();
    const ack = this.acks.get(a.round);
    if (ack) await this.messenger.send(ack);
  }

  /** Forgets rounds long past, so a daemon that runs for months does not grow. */
  prune(round: number, keep = 64): void {
    for (const set of [this.answered, this.installed]) for (const r of set) if (r < round - keep) set.delete(r);
    for (const r of this.acks.keys()) if (r < round - keep) this.acks.delete(r);
  }

  /** Installs the newest global, once, and acknowledges it. */
  async installLatest(): Promise<void> {
    const g = this.latestGlobal;
    if (!g || this.installed.has(g.round)) return;
    const a = this.announce?.round === g.round ? this.announce : undefined;
    const ack = await this.participant.install(g, a);
    if (!ack) return; // not this agent's session: kept in latestGlobal until a session begins
    this.installed.add(g.round);
    if (ack.ok) this.lastInstalled = g.round;
    else this.lastError = ack.reason;
    this.acks.set(g.round, ack);
    this.prune(g.round);
    await this.messenger.send(ack);
    if (g.phase === 'final' && ack.ok && this.participant.result) this.hooks.onModel?.(this.participant.result);
  }
}
