import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Reduction, RoundEvent } from '../../../coordinator/round/events.js';
import { reduce } from '../../../coordinator/round/reducer.js';
import type { CoordinatorState } from '../../../coordinator/round/state.js';
import { entryCount } from '../../../coordinator/round/step.js';
import { Driver, TIMING, checkBody } from './driver.js';

// The runner reduces in place (step.ts: the per-agent maps are written into, not copied): every
// event must give the state and effects the pure reduction gives, and undo() must take an
// event's writes back (an event the journal could not record is not applied).

/** A Driver that reduces every event a second time, in place over a state of its own, and compares. */
class Shadowed extends Driver {
  owned: CoordinatorState = structuredClone(this.state);
  compared = 0;

  override feed(event: RoundEvent): Reduction {
    const r = super.feed(event);
    const s = reduce(this.owned, event, this.settings, checkBody, undefined, { inPlace: true });
    this.owned = s.state;
    assert.equal(s.effects, r.effects, `effects of ${event.type}`);
    assert.is(s.durable, r.durable, `durable of ${event.type}`);
    assert.equal(this.owned, this.state, `state after ${event.type}`);
    this.compared++;
    return r;
  }
}

const AGENTS = ['a', 'b', 'c', 'd'];

test('in place: two sessions of rounds, refusals, an offline agent and acks give the pure states and effects', () => {
  const d = new Shadowed();
  d.start();
  for (const a of AGENTS) d.presence(a);
  for (let round = 0; round < 6 && !d.state.done; round++) {
    if (!d.state.current) d.advance(TIMING.sessionIntervalMs).tick();
    if (!d.state.current) continue;
    d.update('a', { round: 999 }); // refused: an unknown round
    d.presence('d', 'busy');
    d.playRound(AGENTS, { ack: () => ({ loss: 0.5, ridgeLosses: [[1, 1, 1, 1, 1, 1]] }) });
    d.presence('d', 'offline');
    d.presence('d');
    d.advance(TIMING.roundIntervalMs).tick();
  }
  assert.ok(d.state.history.length >= 3, `rounds ran (${d.state.history.length})`);
  assert.ok(d.compared > 50);
});

test('in place: undo() takes back what an acknowledgement and an update wrote into the maps', () => {
  const d = new Driver();
  d.start();
  for (const a of ['a', 'b', 'c']) d.presence(a);
  const announce = d.announce();
  // The runner's own copy of the state, in a round being collected.
  const owned = structuredClone(d.state);
  const before = structuredClone(owned);
  const update: RoundEvent = { type: 'update', now: d.now, message: d.updateMessage('a') };
  const r = reduce(owned, update, d.settings, checkBody, undefined, { inPlace: true });
  assert.ok('a' in owned.current!.updates, 'written in place');
  assert.ok(r.durable);
  r.undo();
  assert.equal(owned, before, 'the update taken back');
  assert.is(announce.round, owned.current!.round);

  d.playRound(['a', 'b', 'c']);
  assert.ok(d.state.history.length === 1 && d.state.current === null, 'the ridge round completed');
  d.advance(TIMING.roundIntervalMs).tick();
  for (const a of ['a', 'b', 'c']) d.update(a);
  d.runEffects();
  const acking = structuredClone(d.state);
  const snapshot = structuredClone(acking);
  const ack: RoundEvent = { type: 'ack', now: d.now, message: d.ackMessage('b', { loss: 0.25 }) };
  const r2 = reduce(acking, ack, d.settings, checkBody, undefined, { inPlace: true });
  assert.ok('b' in acking.current!.acks && acking.agents.b!.installed === acking.current!.round);
  r2.undo();
  assert.equal(acking, snapshot, 'the acknowledgement and the agent record taken back');

  // A new agent's presence, taken back: the agents map's kept count follows both.
  assert.is(entryCount(acking.agents), 3);
  const r3 = reduce(acking, { type: 'presence', now: d.now, message: { type: 'presence', federation: 't', agent: 'z', state: 'online', at: d.now } }, d.settings, checkBody, undefined, { inPlace: true });
  assert.is(entryCount(acking.agents), 4);
  r3.undo();
  assert.is(entryCount(acking.agents), 3);
  assert.equal(acking, snapshot, 'the presence taken back');
});

test.run();
