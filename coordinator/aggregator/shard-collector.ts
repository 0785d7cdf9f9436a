import type { CoordinatorBundle } from '../../common/crypto/bundle.js';
import { UpdateAccumulator } from '../../common/crypto/aggregate.js';
import { deriveParams } from '../../common/crypto/params.js';
import { expandAboveClients } from '../../common/crypto/wire.js';
import { modelParamCount, ridgePayloadLength } from '../../common/protocol/federation-model.js';
import { announcedShards, type Announce, type PartialAgent, type PartialSum, type Update } from '../../common/protocol/messages.js';
import { shardOf } from '../../common/protocol/shards.js';
import { ckksStrategy, type AggregationStrategy } from '../strategy/aggregation.js';

/**
 * One aggregator worker's view of the rounds (`icosfl-coordinator aggregate --shard K/S`): which
 * round the leader announced and the updates of shard K's agents for it. No clock and no I/O: the
 * worker (worker.ts) feeds it messages and asks `due(now)` whether to send the partial sum yet:
 * once as many of its agents have sent as the announcement expects on shard K (the leader's count
 * of them online), or at the margin before the deadline. Nothing is journaled: a restarted worker reads
 * the retained announcement again, and a broker's persistent session delivers what it missed.
 *
 * An update is taken under the same rules as the leader's (on-update.ts), checked by the same
 * strategy, so a bad one is refused here, where its round's sum is built, not in the middle of it.
 */
export interface ShardCollectorOptions {
  shard: number;
  shards: number;
  federation: string;
  /** The coordinator bundle of a key id (each round is summed under the key its announcement names: key rotation), or undefined. */
  bundleFor: (keyId: string) => CoordinatorBundle | undefined;
  /** Send at the latest this long before the announcement's deadline. */
  marginMs: number;
}

export type Verdict = { taken: true } | { taken: false; reason: string; detail: string };

interface Keyed {
  bundle: CoordinatorBundle;
  strategy: AggregationStrategy;
}

interface Collecting {
  announce: Announce;
  key: Keyed;
  params: number;
  updates: Map<string, { samples: number; windows: number; baseLoss: Update['baseLoss']; bytes: number; body: Uint8Array | undefined }>;
  /**
   * When the round's aggregate will be expanded (over 376 agents expected in all): the running sum,
   * each update added (its seed expanded) as it arrives, so the expansions are spread over the
   * intake rather than done at once when the partial is due; an expanded sum's bytes do not depend
   * on the order. Otherwise the bodies are kept and summed in agent order at the end (a seeded
   * aggregate lists its seeds in the order added).
   */
  running: UpdateAccumulator | undefined;
  sent: boolean;
}

export class ShardCollector {
  readonly #o: ShardCollectorOptions;
  readonly #keys = new Map<string, Keyed>();
  #round: Collecting | undefined;

  #keyed(keyId: string): Keyed | undefined {
    let k = this.#keys.get(keyId);
    const bundle = k ? undefined : this.#o.bundleFor(keyId);
    if (bundle) this.#keys.set(keyId, (k = { bundle, strategy: ckksStrategy(bundle) }));
    return k;
  }

  constructor(o: ShardCollectorOptions) {
    if (!Number.isInteger(o.shards) || o.shards < 2 || !Number.isInteger(o.shard) || o.shard < 0 || o.shard >= o.shards) throw new RangeError(`shard ${o.shard}/${o.shards}: need 0 ≤ K < S, S ≥ 2`);
    this.#o = o;
  }

  get round(): number | undefined {
    return this.#round?.announce.round;
  }

  get updates(): number {
    return this.#round?.updates.size ?? 0;
  }

  /** A (re)announced round: a new one starts a collection; the same one again changes nothing. */
  onAnnounce(a: Announce): Verdict {
    if (this.#round && a.round === this.#round.announce.round && a.session === this.#round.announce.session) return { taken: true };
    if (this.#round && a.round < this.#round.announce.round) return { taken: false, reason: 'stale', detail: `announcement of round ${a.round} after round ${this.#round.announce.round}` };
    if (announcedShards(a) !== this.#o.shards) {
      this.#round = undefined;
      return { taken: false, reason: 'wrong-shard', detail: `round ${a.round} is announced with ${announcedShards(a)} shard(s); this worker is shard ${this.#o.shard}/${this.#o.shards}` };
    }
    // The final round takes no updates: nothing to collect.
    if (a.phase === 'final') {
      this.#round = undefined;
      return { taken: true };
    }
    const key = this.#keyed(a.keyId);
    if (!key) {
      this.#round = undefined;
      return { taken: false, reason: 'wrong-key', detail: `round ${a.round} is announced under key ${a.keyId} (epoch ${a.keyEpoch ?? 0}), which this worker does not hold (coordinator.keys, coordinator.next_keys)` };
    }
    const params = a.phase === 'ridge' ? ridgePayloadLength(a.model) : modelParamCount(a.model);
    // Expanded here when the round's whole aggregate will be: the seed expansions are the costly
    // part, and they belong on the workers, not the leader.
    const expected = (a.shards ?? []).reduce((s, n) => s + n, 0);
    const expand = expected > expandAboveClients(deriveParams(key.bundle.params));
    this.#round = { announce: a, key, params, updates: new Map(), running: expand ? new UpdateAccumulator(key.bundle, { paramCount: params, expandAbove: 0 }) : undefined, sent: false };
    return { taken: true };
  }

  onUpdate(m: Update): Verdict {
    const c = this.#round;
    const refuse = (reason: string, detail: string): Verdict => ({ taken: false, reason, detail });
    if (!c || c.sent || m.round !== c.announce.round || m.session !== c.announce.session) return refuse(c && m.round === c.announce.round ? 'late' : 'stale', `update of ${m.agent} for round ${m.round}: ${c ? (c.sent ? `round ${c.announce.round}'s partial sum is sent` : `round ${c.announce.round} is collected`) : 'no round is collected'}`);
    if (m.shard !== this.#o.shard || shardOf(m.agent, this.#o.shards) !== this.#o.shard) return refuse('wrong-shard', `update of ${m.agent} (shard ${shardOf(m.agent, this.#o.shards)}) at shard ${this.#o.shard}`);
    if (c.updates.has(m.agent)) return { taken: true }; // a redelivery
    if (m.phase !== c.announce.phase || m.codec !== c.announce.codec) return refuse('wrong-phase', `update of phase ${m.phase} (${m.codec}) for a ${c.announce.phase} round (${c.announce.codec})`);
    if (m.samples > c.announce.weightCap || m.samples > m.windows) return refuse('weight', `update of ${m.agent} claims weight ${m.samples} (windows ${m.windows}); the round allows at most ${c.announce.weightCap}`);
    if ((m.keyEpoch ?? 0) !== (c.announce.keyEpoch ?? 0)) return refuse('wrong-key-epoch', `update of ${m.agent} of key epoch ${m.keyEpoch ?? 0}; round ${c.announce.round} is under key epoch ${c.announce.keyEpoch ?? 0}`);
    const bad = c.key.strategy.checkBody(m.body, c.params, m.samples);
    if (bad) return refuse('bad-body', `update of ${m.agent} refused: ${bad}`);
    if (c.running) {
      try {
        c.running.add(m.body);
      } catch (err) {
        // A replayed ciphertext under another agent's name, or Σ n_k over the bound: the sum is unchanged.
        return refuse('bad-body', `update of ${m.agent} refused: ${(err as Error).message}`);
      }
    }
    c.updates.set(m.agent, { samples: m.samples, windows: m.windows, baseLoss: m.baseLoss, bytes: m.body.length, body: c.running ? undefined : m.body });
    return { taken: true };
  }

  /** Send now: the shard's expected agents have all sent, or the margin before the deadline is reached (with at least one update). */
  due(now: number): boolean {
    const c = this.#round;
    if (!c || c.sent || c.updates.size === 0) return false;
    if (now >= c.announce.deadline - this.#o.marginMs) return true;
    return c.updates.size >= (c.announce.shards?.[this.#o.shard] ?? Infinity);
  }

  /** The partial sum of the updates taken (sorted by agent, so its bytes never depend on arrival order); marks the round sent. */
  partial(): PartialSum {
    const c = this.#round;
    if (!c || c.updates.size === 0) throw new RangeError('ShardCollector.partial: no update to sum');
    const a = c.announce;
    const agents = [...c.updates.keys()].sort();
    const acc = c.running ?? new UpdateAccumulator(c.key.bundle, { paramCount: c.params });
    const list: PartialAgent[] = [];
    for (const agent of agents) {
      const u = c.updates.get(agent)!;
      if (u.body) acc.add(u.body);
      // The body is summed: only what answers a redelivery stays.
      u.body = undefined;
      list.push({ agent, samples: u.samples, windows: u.windows, bytes: u.bytes, ...(u.baseLoss === undefined ? {} : { baseLoss: u.baseLoss }) });
    }
    c.sent = true;
    c.running = undefined;
    return {
      type: 'partial',
      federation: this.#o.federation,
      session: a.session,
      round: a.round,
      phase: a.phase as 'ridge' | 'fedavg',
      shard: this.#o.shard,
      shards: this.#o.shards,
      codec: a.codec,
      agents: list,
      body: acc.finish(),
    };
  }
}
