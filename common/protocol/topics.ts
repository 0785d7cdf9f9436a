import { ID_PATTERN, type Message, type MessageType } from './messages.js';
import type { RejectReason } from './frame.js';
import { MAX_SHARDS } from './shards.js';

/**
 * Where each message goes, under `icosfl/v1/<federation>/` (the version in the path lets a
 * future incompatible protocol live beside this one on one broker):
 *
 *   round                 announce, retained: an agent that (re)connects has the current round at once
 *   global/<chunk>        global, retained, one topic per chunk (a retained message is one per topic)
 *   update/<agent>        update chunks, agent → coordinator
 *   ack/<agent>           ack, agent → coordinator
 *   presence/<agent>      presence, agent → coordinator; also the agent's last will ('offline')
 *   shard-update/<k>/<agent>  update chunks in a sharded round (announce.shards = S > 1), agent →
 *                         aggregator worker k = shardOf(agent, S) (shards.ts); one topic level per
 *                         shard, so every chunk of an update reaches the one worker subscribed to it
 *   partial/<k>           partial, worker k → round leader
 *
 * Per-agent topics let a broker ACL (`pattern` lines keyed on the client's identity) confine an
 * agent to its own update, ack and presence topics.
 */
export const TOPIC_ROOT = 'icosfl/v1';

export type TopicKind = 'round' | 'global' | 'update' | 'ack' | 'presence' | 'shard-update' | 'partial';

export const KIND_OF_TYPE: Readonly<Record<MessageType, TopicKind>> = { announce: 'round', global: 'global', update: 'update', ack: 'ack', presence: 'presence', partial: 'partial' };

function checkId(what: string, value: string): void {
  if (!ID_PATTERN.test(value)) throw new RangeError(`${what} '${value}' must be 1–64 of [A-Za-z0-9._-]`);
}

export interface FederationTopics {
  prefix: string;
  round: string;
  global(chunk: number): string;
  update(agent: string): string;
  ack(agent: string): string;
  presence(agent: string): string;
  shardUpdate(shard: number, agent: string): string;
  partial(shard: number): string;
  /** A worker's subscription to its shard's updates. */
  shardUpdateFilter(shard: number): string;
  partialFilter: string;
  /** Subscriptions: the coordinator takes the agents' three, agents the coordinator's two. */
  globalFilter: string;
  updateFilter: string;
  ackFilter: string;
  presenceFilter: string;
}

export function federationTopics(federation: string): FederationTopics {
  checkId('federation id', federation);
  const prefix = `${TOPIC_ROOT}/${federation}`;
  const perAgent = (kind: string) => (agent: string) => {
    checkId('agent id', agent);
    return `${prefix}/${kind}/${agent}`;
  };
  const checkShard = (shard: number) => {
    if (!Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS) throw new RangeError(`shard must be an integer 0…${MAX_SHARDS - 1}, got ${shard}`);
  };
  return {
    prefix,
    round: `${prefix}/round`,
    shardUpdate: (shard, agent) => {
      checkShard(shard);
      checkId('agent id', agent);
      return `${prefix}/shard-update/${shard}/${agent}`;
    },
    partial: (shard) => {
      checkShard(shard);
      return `${prefix}/partial/${shard}`;
    },
    shardUpdateFilter: (shard) => {
      checkShard(shard);
      return `${prefix}/shard-update/${shard}/+`;
    },
    partialFilter: `${prefix}/partial/+`,
    global: (chunk) => {
      if (!Number.isInteger(chunk) || chunk < 0) throw new RangeError(`chunk index must be an integer ≥ 0, got ${chunk}`);
      return `${prefix}/global/${chunk}`;
    },
    update: perAgent('update'),
    ack: perAgent('ack'),
    presence: perAgent('presence'),
    globalFilter: `${prefix}/global/+`,
    updateFilter: `${prefix}/update/+`,
    ackFilter: `${prefix}/ack/+`,
    presenceFilter: `${prefix}/presence/+`,
  };
}

export interface ParsedTopic {
  federation: string;
  kind: TopicKind;
  /** The agent a per-agent topic belongs to. */
  agent?: string;
  /** A global chunk topic's index. */
  chunk?: number;
  /** A shard-update or partial topic's shard. */
  shard?: number;
}

/** undefined for anything that is not one of this protocol's topics. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts.length < 4 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT || !ID_PATTERN.test(parts[2]!)) return undefined;
  const federation = parts[2]!;
  const kind = parts[3]!;
  if (kind === 'round' && parts.length === 4) return { federation, kind };
  const shardLevel = /^(0|[1-9][0-9]{0,2})$/;
  if (kind === 'shard-update' && parts.length === 6 && shardLevel.test(parts[4]!) && Number(parts[4]) < MAX_SHARDS && ID_PATTERN.test(parts[5]!)) {
    return { federation, kind, shard: Number(parts[4]), agent: parts[5]! };
  }
  if (parts.length !== 5) return undefined;
  if (kind === 'partial') return shardLevel.test(parts[4]!) && Number(parts[4]) < MAX_SHARDS ? { federation, kind, shard: Number(parts[4]) } : undefined;
  const last = parts[4]!;
  if (kind === 'global') return /^(0|[1-9][0-9]{0,5})$/.test(last) ? { federation, kind, chunk: Number(last) } : undefined;
  if ((kind === 'update' || kind === 'ack' || kind === 'presence') && ID_PATTERN.test(last)) return { federation, kind, agent: last };
  return undefined;
}

/**
 * The reassembly stream of a topic (chunks.ts): a per-sender topic is its own stream; the global
 * chunk topics are one.
 */
export function streamOf(topic: string): string {
  const t = parseTopic(topic);
  return t?.kind === 'global' ? `${TOPIC_ROOT}/${t.federation}/global` : topic;
}

/**
 * The one routing rule both ends apply to a decoded message: it must belong to `federation`,
 * arrive on its type's topic, and on a per-agent topic name that agent as its sender (nobody
 * publishes as someone else, even where a broker has no ACL). The reason, or undefined when it fits.
 */
export function routeMismatch(topic: string, message: Message, federation: string): RejectReason | undefined {
  const t = parseTopic(topic);
  if (!t) return 'wrong-topic';
  if (message.type === 'update') {
    // A sharded update travels on its own shard's topic, an unsharded one on update/<agent>.
    if (t.kind !== (message.shard === undefined ? 'update' : 'shard-update') || t.shard !== message.shard) return 'wrong-topic';
  } else if (t.kind !== KIND_OF_TYPE[message.type]) return 'wrong-topic';
  if (message.type === 'partial' && t.shard !== message.shard) return 'wrong-topic';
  if (t.federation !== federation || message.federation !== federation) return 'wrong-federation';
  if (t.agent !== undefined && 'agent' in message && message.agent !== t.agent) return 'agent-mismatch';
  return undefined;
}
