import type { Logger } from '../../common/log.js';
import type { Message } from '../../common/protocol/messages.js';
import type { Messenger } from '../../common/transport/messenger.js';
import type { Transport } from '../../common/transport/transport.js';
import { ClientCore, type ClientHooks } from './client-core.js';
import { onAnnounce } from './handlers/on-announce.js';
import { onGlobal } from './handlers/on-global.js';
import type { Participant } from './participant.js';

/**
 * The agent's federation client: subscribes to the round and global topics, dispatches each
 * message to its handler (handlers/), says it is there (presence now, every presenceEveryMs,
 * and after every reconnect, when it also resends its answer to a round still open). The
 * transport reconnects by itself; the broker publishes the last will ('offline') if the agent
 * vanishes.
 */
export interface FederationClientOptions extends ClientHooks {
  agent: string;
  federation: string;
  transport: Transport;
  messenger: Messenger;
  participant: Participant;
  logger: Logger;
  presenceEveryMs?: number;
  software?: string;
  /** A message whose handling failed (also logged); simulate stops on it. */
  onError?: (err: unknown) => void;
  clock?: () => number;
}

/** stop()'s bound on its goodbye: well inside the daemon's 1.5 s for stopping the job. */
const GOODBYE_MS = 500;

export class FederationClient {
  readonly core: ClientCore;
  readonly #o: FederationClientOptions;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(o: FederationClientOptions) {
    this.#o = o;
    this.core = new ClientCore(o.agent, o.federation, o.participant, o.messenger, o.logger, { onModel: o.onModel }, o.software ?? 'icosfl', o.clock ?? Date.now);
    o.messenger.onMessage((m) => this.#serial(() => this.#dispatch(m)));
    o.transport.on('connect', () => void this.#serial(() => this.#reconnected()));
  }

  async #dispatch(m: Message): Promise<void> {
    try {
      if (m.type === 'announce') await onAnnounce(this.core, m);
      else if (m.type === 'global') await onGlobal(this.core, m);
      else this.#o.logger.warn({ type: m.type }, 'agent received an agent message');
    } catch (err) {
      this.core.lastError = (err as Error).message;
      this.#o.logger.error({ err, type: m.type }, 'federation message handling failed');
      this.#o.onError?.(err);
    }
  }

  /** One thing at a time: messages, reconnects and presence beats never interleave. */
  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #reconnected(): Promise<void> {
    await this.core.sendPresence(this.core.presenceState, this.core.presenceReason);
    const a = this.core.announce;
    if (a && this.core.answered.has(a.round)) await this.core.resend(a);
  }

  async start(): Promise<void> {
    const { messenger, transport } = this.#o;
    await transport.subscribe(messenger.topics.round);
    await transport.subscribe(messenger.topics.globalFilter);
    await this.#serial(() => this.core.sendPresence('online'));
    const every = this.#o.presenceEveryMs ?? 30_000;
    if (every > 0) {
      const beat = () => {
        void this.#serial(() => this.core.sendPresence(this.core.presenceState, this.core.presenceReason).catch((err) => this.#o.logger.debug({ err }, 'presence not sent')));
        this.#timer = setTimeout(beat, every);
        this.#timer.unref();
      };
      this.#timer = setTimeout(beat, every);
      this.#timer.unref();
    }
  }

  /**
   * The agent's key bundles changed (key rotation): say which keys it holds now, and answer
   * again an announcement it could not take part in (it may hold that round's key now).
   */
  keysChanged(): Promise<void> {
    return this.#serial(async () => {
      const a = this.core.announce;
      if (a && this.core.presenceState === 'incompatible') {
        this.core.answered.delete(a.round);
        await this.core.answerCurrent();
      }
      await this.core.sendPresence(this.core.presenceState, this.core.presenceReason);
    });
  }

  status(): Record<string, unknown> {
    const c = this.core;
    return {
      agent: c.agent,
      federation: c.federation,
      transport: this.#o.transport.status(),
      presence: c.presenceState,
      presence_reason: c.presenceReason ?? null,
      keys: c.participant.keyIds(),
      round: c.announce ? { round: c.announce.round, session: c.announce.session, phase: c.announce.phase, step: c.announce.step } : null,
      last_round_joined: c.lastRound ?? null,
      last_global_installed: c.lastInstalled ?? null,
      waiting_for_global: c.waitingFor ?? null,
      last_error: c.lastError ?? null,
      messages: this.#o.messenger.stats(),
    };
  }

  /**
   * Says goodbye ('offline', not the will) and stops; the caller closes the transport. The
   * goodbye waits at most GOODBYE_MS (a publish waits for the broker, which may be away) and is
   * skipped while disconnected: the broker then already published the will.
   */
  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    if (!this.#o.transport.status().connected) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, GOODBYE_MS)));
    await Promise.race([this.#serial(() => this.core.sendPresence('offline', 'stopped').catch(() => undefined)), late]);
    clearTimeout(timer);
  }
}
