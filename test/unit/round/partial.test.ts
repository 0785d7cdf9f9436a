import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, aggregate, generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/index.js';
import { updateFor, type Announce, type PartialAgent, type PartialSum } from '../../../common/protocol/messages.js';
import { shardOf } from '../../../common/protocol/shards.js';
import type { Effect, RoundEvent } from '../../../coordinator/round/events.js';
import { FileJournal, MemoryJournal, partialBodyKey } from '../../../coordinator/round/journal.js';
import { expectedPerShard } from '../../../coordinator/round/lifecycle.js';
import { reduce } from '../../../coordinator/round/reducer.js';
import { initialState, type CoordinatorState, type RoundSettings } from '../../../coordinator/round/state.js';
import { ckksStrategy } from '../../../coordinator/strategy/aggregation.js';
import { FEDAVG_PARAMS, deepFreeze, testSettings } from './driver.js';

// The leader's side of a sharded round (handlers/on-partial.ts), through the pure reducer with
// the real CKKS strategy: the announcement names the shards, partial sums count their agents,
// every refusal has its reason, collection closes once every shard is in, the aggregate effect
// names the shards to sum, and the journal keeps partial bodies across a reopen.
let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let cipher: AgentCipher;
let settings: RoundSettings;
const AGENTS: string[] = [];
const logger = pino({ level: 'silent' });

test.before(async () => {
  ({ agent, coordinator } = await generateFederation({ federationId: 't' }));
  cipher = await AgentCipher.create(agent);
  settings = testSettings({ codec: 'ckks', shards: 2, minAgents: 3, keyId: coordinator.params.keyId, maxRoundSamples: coordinator.params.maxRoundSamples });
  const per = [0, 0];
  for (let i = 0; AGENTS.length < 4; i++) if (per[shardOf(`a${i}`, 2)]!++ < 2) AGENTS.push(`a${i}`);
});
test.after(() => cipher.dispose());

const strategy = () => ckksStrategy(coordinator);

function run(state: CoordinatorState, event: RoundEvent): { state: CoordinatorState; effects: Effect[] } {
  const s = strategy();
  const r = reduce(deepFreeze(state), event, settings, (b, p, n) => s.checkBody(b, p, n), (b, p, c, n) => s.checkPartial(b, p, c, n));
  return { state: r.state, effects: r.effects };
}

/** Four agents online, a FedAvg round announced (the model has a ridge round first: it is answered by partials too). */
function announced(): { state: CoordinatorState; announce: Announce } {
  let state = initialState(settings, 0);
  state = run(state, { type: 'start', now: 0 }).state;
  for (const a of AGENTS) state = run(state, { type: 'presence', now: 1, message: { type: 'presence', federation: 't', agent: a, state: 'online', at: 1 } }).state;
  // The last presence brought the quorum online: the round is announced then (or on this tick).
  state = run(state, { type: 'tick', now: 2 }).state;
  const c = state.current;
  assert.ok(c, 'a round is announced');
  assert.equal(c.expected, [...AGENTS].sort());
  return { state, announce: c.announce };
}

function partial(a: Announce, shard: number, agents: string[], over: Partial<PartialSum> = {}, listed?: PartialAgent[]): PartialSum {
  const params = a.phase === 'ridge' ? 102 : FEDAVG_PARAMS;
  const bodies = agents.map(() => cipher.encryptUpdate(new Float32Array(params).fill(0.25), 5));
  return {
    type: 'partial',
    federation: 't',
    session: a.session,
    round: a.round,
    phase: a.phase as 'ridge' | 'fedavg',
    shard,
    shards: 2,
    codec: 'ckks',
    agents: listed ?? agents.map((id) => ({ agent: id, samples: 5, windows: 9, baseLoss: 0.5, bytes: bodies[0]!.length })),
    body: aggregate(coordinator, bodies),
    ...over,
  };
}

const shardAgents = (k: number) => AGENTS.filter((a) => shardOf(a, 2) === k);

test('the announcement names the shards; two partial sums close the collection; the aggregate effect names both shards', () => {
  const { state, announce } = announced();
  // Announced once the quorum (3) was online: those three, counted per shard (the fourth is expected too, having come online since).
  assert.equal(announce.shards, expectedPerShard(AGENTS.slice(0, 3), 2));
  assert.equal(expectedPerShard(AGENTS, 2), [2, 2]);
  let r = run(state, { type: 'partial', now: 3, message: partial(announce, 0, shardAgents(0)) });
  const c = r.state.current!;
  assert.equal(Object.keys(c.updates).sort(), shardAgents(0));
  assert.equal(c.partials, { '0': { agents: shardAgents(0), bytes: partial(announce, 0, shardAgents(0)).body.length } });
  assert.is(c.status, 'collecting');
  assert.is(r.state.agents[shardAgents(0)[0]!]!.rounds, 1);
  r = run(r.state, { type: 'partial', now: 4, message: partial(announce, 1, shardAgents(1)) });
  assert.is(r.state.current!.status, 'aggregating');
  const agg = r.effects.find((e) => e.type === 'aggregate');
  assert.equal(agg, { type: 'aggregate', round: announce.round, agents: [], shards: [0, 1] });
  // A second copy of a shard's partial (a redelivery) changes nothing.
  const again = run(r.state, { type: 'partial', now: 5, message: partial(announce, 1, shardAgents(1)) });
  assert.equal(again.state.rejected, r.state.rejected);
});

test('refusals: another shard count, an agent of another shard or listed twice, an over-cap weight, a body of other clients, a direct update', () => {
  const { state, announce } = announced();
  const [x, y] = shardAgents(0) as [string, string];
  const other = shardAgents(1)[0]!;
  const cases: [string, PartialSum][] = [
    ['wrong-shard', partial(announce, 0, [x, y], { shards: 3 })],
    ['bad-partial', partial(announce, 0, [x, other])],
    ['bad-partial', partial(announce, 0, [x, x])],
    ['bad-partial', partial(announce, 0, [x], {}, [{ agent: x, samples: announce.weightCap + 1, windows: announce.weightCap + 1, bytes: 1 }])],
    ['bad-body', partial(announce, 0, [x], {}, [{ agent: x, samples: 5, windows: 9, bytes: 1 }, { agent: y, samples: 5, windows: 9, bytes: 1 }])],
    ['wrong-phase', partial(announce, 0, [x, y], { phase: announce.phase === 'ridge' ? 'fedavg' : 'ridge' })],
    ['unknown-round', partial(announce, 0, [x, y], { round: announce.round + 1 })],
  ];
  for (const [reason, m] of cases) {
    const r = run(state, { type: 'partial', now: 3, message: m });
    assert.is(r.state.rejected[reason], 1, `${reason}: ${JSON.stringify(r.effects.filter((e) => e.type === 'log').map((e) => e.type === 'log' && e.msg))}`);
    assert.equal(r.state.current!.updates, {}, `${reason}: nothing counted`);
  }
  const body = cipher.encryptUpdate(new Float32Array(announce.phase === 'ridge' ? 102 : FEDAVG_PARAMS), 5);
  const direct = run(state, { type: 'update', now: 3, message: updateFor(announce, x, { samples: 5, windows: 9, body }) });
  assert.is(direct.state.rejected['wrong-shard'], 1, 'a sharded round takes no update at the leader');
  // An agent already counted through one shard cannot be listed by a partial again.
  const first = run(state, { type: 'partial', now: 3, message: partial(announce, 0, [x]) }).state;
  const twice = run(first, { type: 'partial', now: 4, message: partial(announce, 1, [shardAgents(1)[0]!], {}, [{ agent: x, samples: 5, windows: 9, bytes: 1 }]) });
  assert.is(twice.state.rejected['bad-partial'], 1);
});

test('below the quorum at the deadline the round is abandoned; at or above it the present shards are summed', () => {
  const { state, announce } = announced();
  const one = run(state, { type: 'partial', now: 3, message: partial(announce, 0, shardAgents(0)) }).state;
  const late = run(one, { type: 'tick', now: announce.deadline + 1 });
  assert.is(late.state.history.at(-1)!.outcome, 'abandoned');
  assert.match(late.state.history.at(-1)!.reason!, /2 of the 3 updates the quorum needs/);
  const three = run(one, { type: 'partial', now: 4, message: partial(announce, 1, [shardAgents(1)[0]!]) });
  assert.equal(three.effects.find((e) => e.type === 'aggregate'), { type: 'aggregate', round: announce.round, agents: [], shards: [0, 1] }, 'both shards in: closed at once with 3 ≥ quorum');
});

test('the journal keeps a partial body under its shard: memory, and a file journal reopened', () => {
  const { announce } = announced();
  const m = partial(announce, 1, shardAgents(1));
  const mem = new MemoryJournal();
  mem.append({ type: 'partial', now: 1, message: m });
  assert.equal(mem.updateBodies(announce.round, [partialBodyKey(1)])[0], m.body);
  const dir = mkdtempSync(join(tmpdir(), 'icosfl-partial-journal-'));
  try {
    const j = new FileJournal(dir, logger);
    j.load();
    j.append({ type: 'partial', now: 1, message: m });
    j.close();
    const k = new FileJournal(dir, logger);
    const loaded = k.load();
    const e = loaded.events[0]!;
    assert.is(e.type, 'partial');
    assert.equal(e.type === 'partial' && e.message.body, m.body);
    assert.equal(k.updateBodies(announce.round, [partialBodyKey(1)])[0], m.body);
    k.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
