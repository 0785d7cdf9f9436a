import { z } from 'zod';
import { federationModelSchema } from './federation-model.js';
import { MAX_SHARDS, shardOf } from './shards.js';

/**
 * The closed set of federation messages, in instruction/result pairs:
 *
 *   coordinator → agents              agents → coordinator
 *   announce (retained)          →    update     a round's contribution (encrypted)
 *   global   (retained, chunked) →    ack        installed or not, with the agent's validation report
 *                                     presence   online / busy / waiting-for-data / incompatible / offline (last will)
 *   aggregator worker → round leader (sharded rounds, `icosfl-coordinator aggregate --shard K/S`):
 *   partial  the sum of one shard's updates of a round, listing its agents and their weights
 *
 * Every message has a JSON header (the fields below) and, for update and global, a binary body
 * (a CKKS frame, common/crypto/wire.ts, or plaintext float32 when the federation runs without
 * encryption for a benchmark). frame.ts serialises them, chunks.ts splits them for brokers,
 * topics.ts says where each goes. A reply names the instruction it answers (session, round,
 * phase), and the receiving end checks that against its own state.
 */
export const PROTOCOL_VERSION = 1;

export const PHASES = ['ridge', 'fedavg', 'final'] as const;
export type Phase = (typeof PHASES)[number];

export const CODECS = ['ckks', 'plaintext'] as const;
export type Codec = (typeof CODECS)[number];

/** 'withholding': sends no update for privacy's sake (budget spent, accountant state unusable, not sampled this round); the reason says which. */
export const PRESENCE_STATES = ['online', 'busy', 'waiting-for-data', 'incompatible', 'offline', 'withholding'] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];

/** Federation and agent ids: they become topic levels, so no '/', '+', '#' or spaces. */
export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const id = z.string().regex(ID_PATTERN, 'ids are 1–64 of [A-Za-z0-9._-]');
const count = z.number().int().min(0).max(2 ** 32 - 1);
const positive = z.number().int().min(1).max(2 ** 32 - 1);
const timeMs = z.number().int().min(0).max(8.64e15);
const reason = z.string().max(500);

/**
 * A validation report: a relative loss (≥ 0; 1 = persistence) or "Infinity" (JSON has none:
 * a flat validation tail and a model that predicts a change), or null where it could not be
 * computed. Model selection caps it (coordinator/strategy/model-selection.ts).
 */
// finite(): JSON writes a number Infinity as null, which would turn "worse than persistence" into "no report".
export const lossSchema = z.union([z.number().nonnegative().finite(), z.literal('Infinity'), z.null()]);
export type WireLoss = z.infer<typeof lossSchema>;

export function lossToWire(x: number): WireLoss {
  if (Number.isNaN(x)) return null;
  if (x === Infinity) return 'Infinity';
  return x < 0 ? null : x;
}

export function lossFromWire(x: WireLoss): number {
  return x === null ? NaN : x === 'Infinity' ? Infinity : x;
}

/** What the final round hands over: the best round's global model and each head's pooled ridge penalty. */
export const selectionSchema = z
  .object({
    /** Round id of the global kept; 0 = none beat the seeded initial model, which agents rebuild themselves. */
    bestRound: count,
    /** One pooled penalty per ridge head; empty = no ridge model this session. */
    ridgeLambdas: z.array(z.number().positive().finite()).max(64),
  })
  .strict();
export type Selection = z.infer<typeof selectionSchema>;

/** Federated dropout (Caldas et al. 2018): the fraction of hidden units each agent drops, and the round's mask seed. */
const dropoutSchema = z.object({ rate: z.number().min(0).max(0.9), seed: count }).strict();
export type DropoutSpec = z.infer<typeof dropoutSchema>;

const announceSchema = z
  .object({
    type: z.literal('announce'),
    federation: id,
    session: positive,
    /** Round id: unique and increasing over the federation's life, across sessions. */
    round: positive,
    phase: z.enum(PHASES),
    /** FedAvg step within the session (1 … model.rounds); 0 for ridge and final. */
    step: count,
    /** Round id of the global model to train from; 0 = the seeded initial model. */
    base: count,
    /** Coordinator clock, ms since the epoch: updates after it are not taken. */
    deadline: timeMs,
    issuedAt: timeMs,
    codec: z.enum(CODECS),
    /** The federation key's id (CKKS keyId): an agent holding another key says so instead of sending garbage. */
    keyId: z.string().max(64),
    /** The key's epoch (0 from `keys init`, +1 per `keys rotate`); absent = 0. Updates name it back. */
    keyEpoch: count.optional(),
    /** Largest sample weight n_k an update may claim this round (keeps Σ n_k inside the CKKS range). */
    weightCap: positive,
    model: federationModelSchema,
    configHash: z.string().regex(/^[0-9a-f]{32}$/),
    selection: selectionSchema.optional(),
    /** Federated dropout of this FedAvg round: each agent's kept hidden units follow from (seed, agent id) (dropout.ts). */
    dropout: dropoutSchema.optional(),
    /**
     * Sharded rounds (absent: updates go to the leader): the agents the round expects on each
     * aggregator shard (online at the announcement, by shardOf); its length S is the shard count,
     * and an agent publishes on shard shardOf(agent, S). A worker sends its partial sum once its
     * shard's count is in.
     */
    shards: z.array(count).min(2).max(MAX_SHARDS).optional(),
  })
  .strict();

const updateSchema = z
  .object({
    type: z.literal('update'),
    federation: id,
    agent: id,
    session: positive,
    round: positive,
    phase: z.enum(['ridge', 'fedavg']),
    /** The weight n_k the body was multiplied by (CKKS) or is averaged with (plaintext): min(windows, weightCap). */
    samples: positive,
    /** Training windows behind it, before the cap. */
    windows: positive,
    /** Validation relative loss of the model the update started from (FedAvg step 1: of the initial model). */
    baseLoss: lossSchema.optional(),
    codec: z.enum(CODECS),
    /** The announcement's key epoch this update is encrypted under; another epoch's update is refused. */
    keyEpoch: count.optional(),
    /** Sharded rounds: the shard it is published to (the topic's), shardOf(agent, announce.shards). */
    shard: z.number().int().min(0).max(MAX_SHARDS - 1).optional(),
  })
  .strict();

/** One contributor of a partial sum: what the leader would have recorded from its update. */
const partialAgentSchema = z
  .object({
    agent: id,
    samples: positive,
    windows: positive,
    baseLoss: lossSchema.optional(),
    /** Bytes of its update body (the round's bytes-in figure). */
    bytes: count,
  })
  .strict();

/** Agents one partial sum may list: the wire format's client bound. */
export const MAX_PARTIAL_AGENTS = 65_536;

const partialSchema = z
  .object({
    type: z.literal('partial'),
    federation: id,
    session: positive,
    round: positive,
    phase: z.enum(['ridge', 'fedavg']),
    shard: z.number().int().min(0).max(MAX_SHARDS - 1),
    shards: z.number().int().min(2).max(MAX_SHARDS),
    codec: z.enum(CODECS),
    /** Sorted by agent id, each once; the body is the sum of exactly these agents' updates. */
    agents: z.array(partialAgentSchema).min(1).max(MAX_PARTIAL_AGENTS),
  })
  .strict();

const globalSchema = z
  .object({
    type: z.literal('global'),
    federation: id,
    session: positive,
    round: positive,
    phase: z.enum(PHASES),
    clients: count,
    totalSamples: count,
    codec: z.enum(CODECS),
    selection: selectionSchema.optional(),
    /** Key epoch of the aggregate in the body; an agent refuses one of another epoch than its session's. */
    keyEpoch: count.optional(),
    /** Federated dropout: Σ n_k of the contributors that kept each hidden unit (the body's average divides by Σ n_k of all). */
    unitWeights: z.array(count).max(4096).optional(),
  })
  .strict();

const ackSchema = z
  .object({
    type: z.literal('ack'),
    federation: id,
    agent: id,
    session: positive,
    round: positive,
    phase: z.enum(PHASES),
    ok: z.boolean(),
    reason: reason.optional(),
    /** FedAvg: the global's validation relative loss on this agent. */
    loss: lossSchema.optional(),
    /** Ridge: [head][penalty index] validation relative loss of each pooled penalty. */
    ridgeLosses: z.array(z.array(lossSchema).max(64)).max(64).optional(),
  })
  .strict();

const presenceSchema = z
  .object({
    type: z.literal('presence'),
    federation: id,
    agent: id,
    state: z.enum(PRESENCE_STATES),
    reason: reason.optional(),
    /** Training windows it has now. */
    windows: count.optional(),
    /** Last round it sent an update for, and last round whose global it installed. */
    lastRound: count.optional(),
    installed: count.optional(),
    software: z.string().max(64).optional(),
    /** CKKS key ids this agent holds (its current and next epoch's bundles), so the coordinator knows when it may switch. */
    keys: z.array(z.string().regex(/^[0-9a-f]{32}$/)).max(4).optional(),
    at: timeMs,
  })
  .strict();

export const MESSAGE_SCHEMAS = {
  announce: announceSchema,
  update: updateSchema,
  global: globalSchema,
  ack: ackSchema,
  presence: presenceSchema,
  partial: partialSchema,
} as const;

export type MessageType = keyof typeof MESSAGE_SCHEMAS;
export const MESSAGE_TYPES = Object.keys(MESSAGE_SCHEMAS) as MessageType[];

export type Announce = z.infer<typeof announceSchema>;
export type UpdateHeader = z.infer<typeof updateSchema>;
export type GlobalHeader = z.infer<typeof globalSchema>;
export type Ack = z.infer<typeof ackSchema>;
export type Presence = z.infer<typeof presenceSchema>;
export type PartialHeader = z.infer<typeof partialSchema>;
export type PartialAgent = z.infer<typeof partialAgentSchema>;

/** Update and global carry a body; the others never do. */
export interface Update extends UpdateHeader {
  body: Uint8Array;
}
export interface Global extends GlobalHeader {
  body: Uint8Array;
}
export interface PartialSum extends PartialHeader {
  body: Uint8Array;
}

export type Message = Announce | Update | Global | Ack | Presence | PartialSum;
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** The types that carry a body. */
export const WITH_BODY: ReadonlySet<MessageType> = new Set(['update', 'global', 'partial']);

/** Who may send what: the coordinator's and the agents' sides, for routing and for topic checks. */
export const FROM_COORDINATOR: ReadonlySet<MessageType> = new Set(['announce', 'global']);
export const FROM_AGENT: ReadonlySet<MessageType> = new Set(['update', 'ack', 'presence']);
export const FROM_AGGREGATOR: ReadonlySet<MessageType> = new Set(['partial']);

/**
 * Builds the acknowledgement of a global from the global itself (Flower's reply_to): the reply
 * cannot name another round or phase than the instruction it answers.
 */
export function ackFor(g: GlobalHeader, agent: string, fields: Pick<Ack, 'ok'> & Partial<Pick<Ack, 'reason' | 'loss' | 'ridgeLosses'>>): Ack {
  return { type: 'ack', federation: g.federation, agent, session: g.session, round: g.round, phase: g.phase, ...fields };
}

/** The shard count an announcement names: 1 when it is not sharded. */
export function announcedShards(a: Pick<Announce, 'shards'>): number {
  return a.shards?.length ?? 1;
}

/** Builds an update from the announcement it answers. */
export function updateFor(a: Announce, agent: string, fields: Pick<Update, 'samples' | 'windows' | 'body'> & Partial<Pick<Update, 'baseLoss'>>): Update {
  if (a.phase === 'final') throw new RangeError('updateFor: the final round takes no updates');
  const shard = a.shards !== undefined ? { shard: shardOf(agent, a.shards.length) } : {};
  return { type: 'update', federation: a.federation, agent, session: a.session, round: a.round, phase: a.phase, codec: a.codec, ...(a.keyEpoch !== undefined ? { keyEpoch: a.keyEpoch } : {}), ...fields, ...shard };
}
