import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFederationModel } from '../../../common/protocol/federation-model.js';
import type { Update } from '../../../common/protocol/messages.js';
import type { CoordinatorState } from '../../../coordinator/round/state.js';
import { Driver, FEDAVG_PARAMS, RIDGE_PARAMS, TIMING, bodyOf, testSettings, type UpdateOptions } from './driver.js';

// Collecting a round's updates: when it closes, what it refuses and why, and how presence
// changes whom it waits for.

const NO_RIDGE = parseFederationModel({ metrics: ['cpu'], rounds: 2, ridgeFeatures: 0, lookback: 4, horizon: 2, hiddenUnits: 3 });

/** A FedAvg round (round 2, after a completed ridge round) collecting from a, b and c. */
function fedavgRound(agents = ['a', 'b', 'c']): Driver {
  const d = new Driver();
  d.start();
  for (const a of agents) d.presence(a);
  d.playRound(agents, { ack: () => ({ ridgeLosses: [[1, 1, 1, 1, 1, 1]] }) });
  d.advance(TIMING.roundIntervalMs).tick();
  assert.equal([d.announce().round, d.announce().phase], [2, 'fedavg']);
  return d;
}

/** The state without the bookkeeping a rejection may touch (counters, the agent's last error). */
function course(s: CoordinatorState): unknown {
  return { ...s, rejected: {}, agents: Object.fromEntries(Object.entries(s.agents).map(([k, v]) => [k, { ...v, lastError: null }])) };
}

test('collection closes as soon as every expected agent answered and the quorum is in', () => {
  const d = new Driver();
  d.start();
  d.presence('a');
  d.presence('b');
  d.presence('c');
  d.update('c');
  d.update('a');
  assert.is(d.state.current!.status, 'collecting', 'b is still expected');
  assert.equal(d.lastEffects('aggregate'), []);
  d.update('b');
  assert.is(d.state.current!.status, 'aggregating');
  assert.equal(d.lastEffects('aggregate'), [{ type: 'aggregate', round: 1, agents: ['a', 'b', 'c'] }]);
  // With one agent expected but a quorum of two, one answer is not enough.
  const q = new Driver(testSettings({ minAgents: 2 }));
  q.start();
  q.presence('a');
  q.presence('b');
  q.presence('b', 'offline');
  q.update('a');
  assert.is(q.state.current!.status, 'collecting', 'the quorum is not in');
});

test('at the deadline: the quorum in → aggregate, sorted; below it → abandoned, retried after roundIntervalMs', () => {
  const d = new Driver();
  d.start();
  for (const a of ['c', 'b', 'a']) d.presence(a);
  const deadline = d.state.current!.deadline;
  assert.is(deadline, TIMING.roundTimeoutMs);
  d.update('c', { samples: 3 });
  d.update('a', { samples: 4 });
  d.at(deadline - 1).tick();
  assert.is(d.state.current!.status, 'collecting');
  assert.is(d.last!.durable, false, 'a tick that changes nothing is not journaled');
  d.at(deadline).tick();
  assert.equal(d.lastEffects('aggregate'), [{ type: 'aggregate', round: 1, agents: ['a', 'c'] }]);
  assert.is(d.last!.durable, true);
  d.runEffects();
  assert.equal(d.globalHeader().totalSamples, 7);

  const e = new Driver();
  e.start();
  e.presence('a');
  e.presence('b');
  e.update('b');
  e.at(TIMING.roundTimeoutMs).tick();
  assert.is(e.state.current, null);
  assert.equal(e.lastEffects('aggregate'), []);
  const h = e.state.history.at(-1)!;
  assert.equal([h.round, h.outcome, h.participants, h.expected, h.score], [1, 'abandoned', 1, 2, null]);
  assert.is(h.reason, '1 of the 2 updates the quorum needs arrived by the deadline');
  assert.is(e.state.nextAt, TIMING.roundTimeoutMs + TIMING.roundIntervalMs);
  assert.equal(e.lastEffects('release'), [{ type: 'release', round: 1, keepAggregates: [] }]);
  assert.is(e.state.session!.ridge, null, 'the ridge round is to be run again');
  e.at(TIMING.roundTimeoutMs + TIMING.roundIntervalMs - 1).tick();
  assert.is(e.state.current, null);
  e.at(TIMING.roundTimeoutMs + TIMING.roundIntervalMs).tick();
  assert.equal([e.announce().round, e.announce().phase, e.announce().step], [2, 'ridge', 0]);
});

test('an abandoned FedAvg round is retried with the same step and base', () => {
  const d = fedavgRound(['a', 'b']);
  d.update('a');
  d.at(d.state.current!.deadline).tick();
  assert.is(d.state.history.at(-1)!.outcome, 'abandoned');
  d.advance(TIMING.roundIntervalMs).tick();
  assert.equal([d.announce().round, d.announce().step, d.announce().base], [3, 1, 0]);
  assert.is(d.state.session!.completedSteps, 0);
});

test('a failed sum abandons the round', () => {
  const d = fedavgRound(['a', 'b']);
  d.update('a');
  d.update('b');
  d.feed({ type: 'aggregation-failed', now: d.now, round: 99, reason: 'x' });
  assert.is(d.state.current!.status, 'aggregating', 'another round: ignored');
  d.feed({ type: 'aggregation-failed', now: d.now, round: 2, reason: 'bad residue' });
  assert.is(d.state.current, null);
  assert.is(d.state.history.at(-1)!.reason, 'aggregation failed: bad residue');
  // An 'aggregated' for a round no longer aggregating changes nothing.
  const before = d.state;
  assert.is(d.feed({ type: 'aggregated', now: d.now, round: 2, clients: 2, totalSamples: 20, bytes: 1 }).state, before);
});

test('every rejection leaves the round as it was, counts its reason, and is not journaled', () => {
  const d = fedavgRound();
  const cap = d.state.current!.weightCap;
  assert.is(cap, 250_000, 'three online: max(2, ceil(3.75)) = 4 shares');
  d.update('a');
  const cases: [string, string, Update | UpdateOptions & { agent?: string }][] = [
    ['stale round', 'stale', { round: 1 }],
    ['unknown round', 'unknown-round', { round: 3 }],
    ['another session', 'unknown-round', { session: 2 }],
    ['wrong phase', 'wrong-phase', { phase: 'ridge', body: bodyOf(RIDGE_PARAMS) }],
    ['wrong codec', 'wrong-codec', { codec: 'ckks' }],
    ['weight over the cap', 'weight', { samples: cap + 1, windows: cap + 1 }],
    ['weight over windows', 'weight', { samples: 11, windows: 10 }],
    ['body of another layout', 'bad-body', { body: bodyOf(FEDAVG_PARAMS + 1) }],
    ['body with a NaN', 'bad-body', { body: new Uint8Array(new Float32Array(FEDAVG_PARAMS).fill(NaN).buffer) }],
    ['body of odd length', 'bad-body', { body: new Uint8Array(4 * FEDAVG_PARAMS - 1) }],
  ];
  for (const [what, reason, o] of cases) {
    const before = d.state;
    const count = before.rejected[reason] ?? 0;
    const r = d.update('b', o as UpdateOptions);
    assert.is(r.durable, false, what);
    assert.equal(r.state.current, before.current, `${what}: the round is unchanged`);
    assert.equal(course(r.state), course(before), `${what}: only counters change`);
    assert.is(r.state.rejected[reason], count + 1, `${what}: counted as ${reason}`);
    assert.match(r.state.agents.b!.lastError ?? '', new RegExp(`^${reason}: `), what);
    const warn = r.effects.find((e) => e.type === 'log' && e.level === 'warn');
    assert.ok(warn && warn.type === 'log' && warn.data.reason === reason, `${what}: logged with its reason`);
  }
  assert.equal(d.state.rejected, { stale: 1, 'unknown-round': 2, 'wrong-phase': 1, 'wrong-codec': 1, weight: 2, 'bad-body': 3 });
  // A rejected update from an agent never seen creates no record.
  d.update('zed', { round: 1 });
  assert.is(d.state.agents.zed, undefined);
  // Then b's good update is taken: the round was not spoiled.
  d.update('b');
  assert.equal(Object.keys(d.state.current!.updates).sort(), ['a', 'b']);
  assert.is(d.state.agents.b!.lastError, null);
});

test('between rounds, an update for a round that never was is unknown, for one that was, stale', () => {
  const d = new Driver();
  d.start();
  d.presence('a');
  d.presence('b');
  d.playRound(['a', 'b'], { ack: () => ({ ridgeLosses: [[1, 1, 1, 1, 1, 1]] }) });
  assert.is(d.state.current, null);
  const msg = (round: number): Update => ({ type: 'update', federation: 't', agent: 'a', session: 1, round, phase: 'fedavg', samples: 1, windows: 1, codec: 'plaintext', body: bodyOf(FEDAVG_PARAMS) });
  d.feed({ type: 'update', now: d.now, message: msg(1) });
  assert.is(d.state.rejected.stale, 1);
  d.feed({ type: 'update', now: d.now, message: msg(2) });
  assert.is(d.state.rejected['unknown-round'], 1);
  assert.is(d.last!.durable, false);
});

test('Σ n_k over maxRoundSamples is refused', () => {
  const d = fedavgRound(['a', 'b']);
  const cap = d.state.current!.weightCap; // 333,333: three agents fit in 10^6, a fourth does not
  for (const x of ['x1', 'x2', 'x3']) d.update(x, { samples: cap, windows: cap });
  assert.is(Object.keys(d.state.current!.updates).length, 3);
  const before = d.state;
  const r = d.update('x4', { samples: cap, windows: cap });
  assert.is(r.durable, false);
  assert.is(r.state.rejected['sample-budget'], 1);
  assert.equal(r.state.current, before.current);
  const warn = r.effects.find((e) => e.type === 'log' && e.level === 'warn');
  assert.match(warn && warn.type === 'log' ? warn.msg : '', /Σ n_k would reach 1333332, over the federation's maxRoundSamples 1000000/);
  // Exactly at the bound is fine.
  d.update('x5', { samples: 1e6 - 3 * cap, windows: 1e6 });
  assert.ok('x5' in d.state.current!.updates);
});

test('a late update (after collection closed) is refused; a duplicate is dropped quietly', () => {
  const d = fedavgRound(['a', 'b']);
  d.update('a', { samples: 4 });
  const dup = d.update('a', { samples: 9 });
  assert.is(dup.durable, false);
  assert.equal(dup.state.rejected, {});
  assert.is(dup.state, d.state);
  assert.is(d.state.current!.updates.a!.samples, 4, 'the first copy stands');
  assert.equal(dup.effects.map((e) => e.type === 'log' && e.level), ['debug']);
  d.update('b');
  assert.is(d.state.current!.status, 'aggregating');
  const late = d.update('c');
  assert.is(late.durable, false);
  assert.is(late.state.rejected.late, 1);
  assert.is('c' in late.state.current!.updates, false);
  // A duplicate after the close is still a duplicate, not late.
  d.update('b');
  assert.is(d.state.rejected.late, 1);
  d.runEffects();
  d.update('c');
  assert.is(d.state.rejected.late, 2, 'publishing / acking: late too');
});

test('accepted updates are journaled and recorded', () => {
  const d = fedavgRound(['a', 'b']);
  d.at(5000);
  const r = d.update('b', { samples: 6, windows: 8, baseLoss: Infinity });
  assert.is(r.durable, true);
  assert.equal(d.state.current!.updates.b, { samples: 6, windows: 8, bytes: 4 * FEDAVG_PARAMS, baseLoss: Infinity, at: 5000 });
  d.update('a', { samples: 6, windows: 8, baseLoss: NaN });
  assert.is(d.state.current!.updates.a!.baseLoss, null, 'NaN (null on the wire) is no report');
  assert.equal([d.state.agents.b!.lastRound, d.state.agents.b!.rounds], [2, 2]);
});

test('presence: an expected agent going away is no longer waited for, and may complete the collection', () => {
  for (const state of ['offline', 'waiting-for-data', 'incompatible'] as const) {
    const d = fedavgRound();
    d.update('a');
    d.update('b');
    assert.is(d.state.current!.status, 'collecting');
    d.presence('c', state, { reason: 'gone' });
    assert.equal(d.state.current!.expected, ['a', 'b'], state);
    assert.is(d.state.current!.status, 'aggregating', state);
    assert.equal(d.lastEffects('aggregate'), [{ type: 'aggregate', round: 2, agents: ['a', 'b'] }]);
    assert.is(d.state.agents.c!.reason, 'gone');
  }
  // Busy still takes part: still waited for.
  const d = fedavgRound();
  d.update('a');
  d.update('b');
  d.presence('c', 'busy');
  assert.equal(d.state.current!.expected, ['a', 'b', 'c']);
  assert.is(d.state.current!.status, 'collecting');
  // An agent that already answered stays counted when it goes offline.
  d.presence('a', 'offline');
  assert.equal(d.state.current!.expected, ['a', 'b', 'c']);
});

test('presence: an agent coming online during collection is waited for; an unexpected update is accepted', () => {
  const d = fedavgRound(['b', 'c']);
  d.presence('a');
  assert.equal(d.state.current!.expected, ['a', 'b', 'c']);
  d.update('b');
  d.update('c');
  assert.is(d.state.current!.status, 'collecting', 'a came online: waited for');
  d.update('e');
  assert.ok('e' in d.state.current!.updates);
  assert.equal(d.state.current!.expected, ['a', 'b', 'c', 'e']);
  assert.is(d.state.agents.e!.state, 'online');
  assert.is(d.state.agents.e!.rounds, 1);
  d.update('a');
  assert.equal(d.lastEffects('aggregate'), [{ type: 'aggregate', round: 2, agents: ['a', 'b', 'c', 'e'] }]);
  // Presence outside collection does not touch the round.
  const before = d.state.current;
  d.presence('f');
  assert.is(d.state.current, before);
  assert.equal(d.state.agents.f!.state, 'online');
});

test('without a ridge model the session starts with FedAvg', () => {
  const d = new Driver(testSettings({ model: NO_RIDGE }));
  d.start();
  d.presence('a');
  d.presence('b');
  assert.equal([d.announce().phase, d.announce().step, d.announce().base], ['fedavg', 1, 0]);
});

test.run();
