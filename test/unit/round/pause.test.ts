import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pauseView, statusLine } from '../../../coordinator/service-status.js';
import { Driver, TIMING, rebuild } from './driver.js';

// `icosfl-coordinator pause` / `resume` in the pure reducer: a pause stops new announcements,
// never the round in progress; it is journaled (a replay, as after a restart, stays paused);
// pausing or resuming twice changes nothing.

const RIDGE = [[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]];

test('a pause during collection lets the round finish, then nothing is announced until resume', () => {
  const d = new Driver();
  d.start();
  d.presence('a');
  d.presence('b');
  assert.is(d.announce().round, 1);
  const paused = d.feed({ type: 'pause', now: d.now });
  assert.ok(paused.durable, 'a pause is journaled');
  assert.equal(d.state.paused, { at: d.now });
  assert.equal(pauseView(d.state), { since: d.now, finishing: 1 });
  assert.is(d.state.current!.status, 'collecting', 'the round in progress goes on');
  d.update('a');
  d.update('b');
  d.runEffects();
  d.ack('a', { ridgeLosses: RIDGE });
  d.ack('b', { ridgeLosses: RIDGE });
  assert.is(d.state.current, null, 'round 1 completed while paused');
  assert.is(d.state.history.at(-1)!.outcome, 'completed');
  const announced = d.effects.filter((e) => e.type === 'announce').length;
  // Far past the interval, with the quorum online: still no round.
  for (let i = 0; i < 20; i++) d.advance(TIMING.sessionIntervalMs).tick();
  d.presence('a');
  d.presence('b');
  d.tick();
  assert.is(d.effects.filter((e) => e.type === 'announce').length, announced, 'no announcement while paused');
  assert.is(d.state.current, null);
  assert.match(statusLine(d.state, d.settings, d.now), /^paused \(icosfl-coordinator resume\)/);

  const resumed = d.feed({ type: 'resume', now: d.now });
  assert.ok(resumed.durable);
  assert.is(d.state.paused, null);
  assert.equal(resumed.effects.filter((e) => e.type === 'announce').map((e) => e.type === 'announce' && e.message.round), [2], 'resume announces the overdue round at once');
});

test('pausing twice keeps the first time; resuming a running federation is a no-op (not journaled)', () => {
  const d = new Driver();
  d.start();
  d.feed({ type: 'pause', now: 100 });
  const again = d.feed({ type: 'pause', now: 200 });
  assert.equal(d.state.paused, { at: 100 });
  assert.not.ok(again.durable);
  assert.equal(again.effects, []);
  d.feed({ type: 'resume', now: 300 });
  const twice = d.feed({ type: 'resume', now: 400 });
  assert.not.ok(twice.durable);
  assert.equal(twice.effects, []);
});

test('a pause survives a restart: the journal replays it, and the start event announces nothing', () => {
  const d = new Driver(undefined, { now: 1000 });
  d.start();
  d.feed({ type: 'pause', now: 1005 });
  d.at(1010).presence('a');
  d.at(1020).presence('b');
  assert.is(d.state.current, null, 'the quorum came while paused: no round');
  const rebuilt = rebuild(d.journal, d.settings, 1000);
  assert.equal(rebuilt, d.state);
  const after = new Driver(d.settings, { state: rebuilt, now: 5000, journal: d.journal });
  after.start();
  after.tick();
  assert.is(after.state.current, null);
  assert.equal(after.state.paused, { at: 1005 });
  after.feed({ type: 'resume', now: after.now });
  assert.is(after.announce().round, 1);
});

test('a snapshot written before pause existed (no paused field) reads as running', () => {
  const d = new Driver();
  d.start();
  const { paused: _p, ...old } = d.state;
  void _p;
  const o = new Driver(d.settings, { state: old, now: d.now });
  o.presence('a');
  o.presence('b');
  assert.is(o.announce().round, 1);
  assert.is(pauseView(o.state), null);
});

test.run();
