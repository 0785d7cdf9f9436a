import { modelConfigHash, parseFederationModel } from '../../../common/protocol/federation-model.js';
import type { Ack, Announce, Global, Message, MessageType, PartialSum, Presence, Update } from '../../../common/protocol/messages.js';

/** One valid message of each type (and variants with every optional field), for the protocol tests. */
const model = parseFederationModel({ metrics: ['cpu', 'mem_used_pct'] });

export const ANNOUNCE: Announce = {
  type: 'announce',
  federation: 'fed-1',
  session: 1,
  round: 7,
  phase: 'fedavg',
  step: 3,
  base: 6,
  deadline: 1_700_000_120_000,
  issuedAt: 1_700_000_000_000,
  codec: 'ckks',
  keyId: 'k1',
  weightCap: 838,
  model,
  configHash: modelConfigHash(model),
};

export const FINAL_ANNOUNCE: Announce = { ...ANNOUNCE, round: 9, phase: 'final', step: 0, selection: { bestRound: 6, ridgeLambdas: [0.1, 10] } };

export const UPDATE: Update = {
  type: 'update',
  federation: 'fed-1',
  agent: 'edge.node_7',
  session: 1,
  round: 7,
  phase: 'fedavg',
  samples: 500,
  windows: 812,
  baseLoss: 0.93,
  codec: 'ckks',
  body: Uint8Array.from({ length: 300 }, (_, i) => (i * 7 + 3) & 0xff),
};

export const GLOBAL: Global = {
  type: 'global',
  federation: 'fed-1',
  session: 1,
  round: 7,
  phase: 'fedavg',
  clients: 3,
  totalSamples: 1500,
  codec: 'plaintext',
  body: Uint8Array.from({ length: 1000 }, (_, i) => (i * 13) & 0xff),
};

export const FINAL_GLOBAL: Global = { ...GLOBAL, round: 9, phase: 'final', selection: { bestRound: 0, ridgeLambdas: [] }, body: new Uint8Array(0) };

export const ACK: Ack = { type: 'ack', federation: 'fed-1', agent: 'a1', session: 1, round: 7, phase: 'fedavg', ok: true, loss: 'Infinity' };

export const RIDGE_ACK: Ack = {
  type: 'ack',
  federation: 'fed-1',
  agent: 'a1',
  session: 1,
  round: 5,
  phase: 'ridge',
  ok: false,
  reason: 'system not positive definite',
  ridgeLosses: [
    [0.5, null, 'Infinity', 1, 2, 3],
    [0, 0.25, 0.5, 0.75, 1, 1.25],
  ],
};

export const PRESENCE: Presence = { type: 'presence', federation: 'fed-1', agent: 'a1', state: 'online', at: 1_700_000_000_500 };

export const FULL_PRESENCE: Presence = {
  ...PRESENCE,
  state: 'waiting-for-data',
  reason: 'only 3 windows',
  windows: 3,
  lastRound: 6,
  installed: 5,
  software: 'icosfl 0.1.0',
};

function withoutBaseLoss(u: Update): Update {
  const { baseLoss: _omitted, ...rest } = u;
  return rest;
}

export const PARTIAL: PartialSum = {
  type: 'partial',
  federation: 'fed-1',
  session: 1,
  round: 7,
  phase: 'fedavg',
  shard: 1,
  shards: 4,
  codec: 'ckks',
  agents: [
    { agent: 'a1', samples: 5, windows: 9, baseLoss: 0.5, bytes: 24168 },
    { agent: 'a7', samples: 3, windows: 3, bytes: 24168 },
  ],
  body: new Uint8Array([1, 2, 3, 4]),
};

export const SHARDED_ANNOUNCE: Announce = { ...ANNOUNCE, shards: [3, 0, 5, 1] };
export const SHARDED_UPDATE: Update = { ...UPDATE, shard: 2 };

export const EVERY_MESSAGE: [string, Message][] = [
  ['announce', ANNOUNCE],
  ['announce with selection', FINAL_ANNOUNCE],
  ['update', UPDATE],
  ['update with an empty body and no baseLoss', withoutBaseLoss({ ...UPDATE, body: new Uint8Array(0) })],
  ['global', GLOBAL],
  ['final global, empty body', FINAL_GLOBAL],
  ['ack', ACK],
  ['ridge ack', RIDGE_ACK],
  ['presence', PRESENCE],
  ['presence with every field', FULL_PRESENCE],
  ['sharded announce', SHARDED_ANNOUNCE],
  ['sharded update', SHARDED_UPDATE],
  ['partial sum', PARTIAL],
];

/** The type codes of frame.ts's byte table, written out (not taken from the code under test). */
export const DOCUMENTED_CODES: Record<MessageType, number> = { announce: 1, update: 2, global: 3, ack: 4, presence: 5, partial: 6 };

/** A message's header fields as the frame carries them: everything but `type` and `body`, undefined dropped. */
export function headerFields(m: Message): Record<string, unknown> {
  const { type: _type, body: _body, ...rest } = m as Message & { body?: Uint8Array };
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}
