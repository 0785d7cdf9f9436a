import type { AgentCipher } from '../../common/crypto/index.js';
import type { Logger } from '../../common/log.js';
import type { Ack, Global, Update } from '../../common/protocol/messages.js';
import { Messenger, type MessengerStats } from '../../common/transport/messenger.js';
import type { InboundMessage, MessageHandler, Transport } from '../../common/transport/transport.js';

/**
 * A silent third party on a federation's topics: a Messenger (the code both ends use) over a
 * transport of the test's own, subscribed to `update/+` and `global/+`, keeping every distinct
 * update and global it sees by round. With the agent bundle the test then decrypts them as any
 * agent could and checks the coordinator's sums against plaintext FedAvg.
 */
export interface SeenUpdate {
  header: Omit<Update, 'body'>;
  body: Uint8Array;
}

export class FederationObserver {
  /** round → agent → every distinct update (a resend of the same bytes is a duplicate, not kept twice). */
  readonly updates = new Map<number, Map<string, SeenUpdate[]>>();
  /** round → every acknowledgement seen for it (the validation losses agents report). */
  readonly acks = new Map<number, Ack[]>();
  /** round → every distinct global published for it. */
  readonly globals = new Map<number, Global[]>();
  /** Raw payloads that arrived, per topic kind (before reassembly and dedup). */
  readonly raw = { update: 0, global: 0 };
  readonly #messenger: Messenger;

  private constructor(
    readonly transport: Transport,
    federation: string,
    logger: Logger,
  ) {
    // Tap the transport so raw arrivals are counted before the messenger reassembles them.
    const tapped: Transport = {
      clientId: transport.clientId,
      publish: (topic, payload, opts) => transport.publish(topic, payload, opts),
      subscribe: (filter, qos) => transport.subscribe(filter, qos),
      unsubscribe: (filter) => transport.unsubscribe(filter),
      on: (event, listener) => transport.on(event, listener),
      status: () => transport.status(),
      close: (opts) => transport.close(opts),
      onMessage: (handler: MessageHandler) =>
        transport.onMessage((m: InboundMessage) => {
          if (m.topic.includes('/update/')) this.raw.update++;
          else if (m.topic.includes('/global/')) this.raw.global++;
          return handler(m);
        }),
    };
    this.#messenger = new Messenger({ transport: tapped, federation, accept: new Set(['update', 'global', 'ack']), logger });
    this.#messenger.onMessage((m) => {
      if (m.type === 'update') {
        const { body, ...header } = m;
        const byAgent = this.updates.get(m.round) ?? new Map<string, SeenUpdate[]>();
        const list = byAgent.get(m.agent) ?? [];
        if (!list.some((u) => Buffer.from(u.body).equals(Buffer.from(body)))) list.push({ header, body });
        byAgent.set(m.agent, list);
        this.updates.set(m.round, byAgent);
      } else if (m.type === 'ack') {
        this.acks.set(m.round, [...(this.acks.get(m.round) ?? []), m]);
      } else if (m.type === 'global') {
        const list = this.globals.get(m.round) ?? [];
        if (!list.some((g) => Buffer.from(g.body).equals(Buffer.from(m.body)))) list.push(m);
        this.globals.set(m.round, list);
      }
    });
  }

  /** Subscribes (set the handler first: retained globals come at once). */
  static async attach(transport: Transport, federation: string, logger: Logger): Promise<FederationObserver> {
    const o = new FederationObserver(transport, federation, logger);
    await transport.subscribe(o.#messenger.topics.updateFilter);
    await transport.subscribe(o.#messenger.topics.globalFilter);
    await transport.subscribe(o.#messenger.topics.ackFilter);
    return o;
  }

  stats(): MessengerStats {
    return this.#messenger.stats();
  }

  /** The one update each agent sent for a round (fails if an agent sent two different ones). */
  roundUpdates(round: number): Map<string, SeenUpdate> {
    const out = new Map<string, SeenUpdate>();
    for (const [agent, list] of this.updates.get(round) ?? []) {
      if (list.length !== 1) throw new Error(`${agent} sent ${list.length} different updates for round ${round}`);
      out.set(agent, list[0]!);
    }
    return out;
  }

  /** The one global of a round (fails if none, or two different ones, were published). */
  roundGlobal(round: number): Global {
    const list = this.globals.get(round) ?? [];
    if (list.length !== 1) throw new Error(`round ${round}: ${list.length} different globals seen`);
    return list[0]!;
  }

  async close(): Promise<void> {
    this.#messenger.close();
    await this.transport.close({ force: true }).catch(() => undefined);
  }
}

export interface FedAvgCheck {
  /** Largest |decrypted global − plaintext FedAvg of the decrypted updates|. */
  maxAbsDiff: number;
  clients: number;
  totalSamples: number;
  /** Largest |value| of the average, to read the difference against. */
  maxAbs: number;
}

/**
 * Decrypts each update (w_k) and the global (Σ n_k·w_k / Σ n_k) and compares the global with the
 * plaintext weighted FedAvg, in float64, weights = each update's `samples`.
 */
export function checkFedAvg(cipher: AgentCipher, updates: Map<string, SeenUpdate>, global: Global, paramCount: number): FedAvgCheck {
  if (updates.size === 0) throw new Error(`round ${global.round}: no update was seen`);
  const expected = new Float64Array(paramCount);
  let total = 0;
  for (const u of updates.values()) {
    const d = cipher.decryptAggregate(u.body, { paramCount });
    if (d.clients !== 1 || d.totalSamples !== u.header.samples) throw new Error(`${u.header.agent}: its frame says ${d.clients} clients and n_k ${d.totalSamples}, its message ${u.header.samples}`);
    for (let i = 0; i < paramCount; i++) expected[i]! += u.header.samples * d.weights[i]!;
    total += u.header.samples;
  }
  for (let i = 0; i < paramCount; i++) expected[i]! /= total;
  const g = cipher.decryptAggregate(global.body, { paramCount });
  let maxAbsDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < paramCount; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(g.weights[i]! - expected[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]!));
  }
  if (!Number.isFinite(maxAbsDiff)) maxAbsDiff = Infinity;
  return { maxAbsDiff, clients: g.clients, totalSamples: g.totalSamples, maxAbs };
}
