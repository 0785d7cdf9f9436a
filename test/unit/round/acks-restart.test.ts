import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FEDAVG_PARAMS, Driver, TIMING } from './driver.js';

// Acknowledgements (which count, when a round is over, what its summary says) and the 'start'
// event in every status a restart can find a round in.

/** Round 2 (FedAvg step 1) of a, b and c with its updates in and the sum done: the global is being published. */
function publishing(): Driver {
  const d = new Driver();
  d.start();
  for (const a of ['a', 'b', 'c']) d.presence(a);
  d.playRound(['a', 'b', 'c'], { ack: () => ({ ridgeLosses: [[1, 1, 1, 1, 1, 1]] }) });
  d.advance(TIMING.roundIntervalMs).tick();
  for (const a of ['a', 'b', 'c']) d.update(a, { samples: 5 });
  const agg = d.pending.shift()!;
  assert.is(agg.type, 'aggregate');
  d.feed({ type: 'aggregated', now: d.now, round: 2, clients: 3, totalSamples: 15, bytes: 4 * FEDAVG_PARAMS });
  assert.is(d.state.current!.status, 'publishing');
  return d;
}

function publish(d: Driver, bytes = 500): void {
  const e = d.pending.shift()!;
  assert.is(e.type, 'publish-global');
  if (e.type === 'publish-global') d.feed({ type: 'published', now: d.now, round: e.header.round, chunks: 2, bytes });
}

test('acks: another round, another session, a duplicate and a collecting round are ignored', () => {
  const d = publishing();
  publish(d);
  d.ack('a', { loss: 0.5 });
  for (const [what, fields] of [
    ['another round', { round: 1, loss: 0.1 }],
    ['a future round', { round: 3, loss: 0.1 }],
  ] as const) {
    const before = d.state;
    const r = d.ack('b', fields);
    assert.is(r.state, before, what);
    assert.is(r.durable, false, what);
  }
  const before = d.state;
  const other = d.feed({ type: 'ack', now: d.now, message: { ...d.ackMessage('b', { loss: 0.1 }), session: 2 } });
  assert.is(other.state, before, 'another session');
  const dup = d.ack('a', { loss: 0.9 });
  assert.is(dup.state, before, 'a duplicate');
  assert.is(d.state.current!.acks.a!.loss, 0.5);
  // A wrong phase is refused and counted.
  const wrong = d.ack('b', { phase: 'ridge', loss: 0.1 });
  assert.is(wrong.durable, false);
  assert.is(wrong.state.rejected['wrong-phase'], 1);
  assert.is('b' in wrong.state.current!.acks, false);
  // While collecting, an ack for the round is ignored (there is no global yet).
  const e = new Driver();
  e.start();
  e.presence('a');
  e.presence('b');
  e.update('a');
  const ack = { type: 'ack' as const, federation: 't', agent: 'a', session: 1, round: 1, phase: 'ridge' as const, ok: true };
  const r = e.feed({ type: 'ack', now: 0, message: ack });
  assert.is(r.durable, false);
  assert.equal(r.state.current!.acks, {});
});

test('an ack before "published" is taken; the round finishes when the global is out', () => {
  const d = publishing();
  d.ack('a', { loss: 0.5 });
  d.ack('b', { loss: 0.7 });
  d.ack('c', { loss: 0.9 });
  assert.is(d.state.current!.status, 'publishing', 'every ack is in, but the global is not out yet');
  assert.equal(Object.keys(d.state.current!.acks).sort(), ['a', 'b', 'c']);
  publish(d);
  assert.is(d.state.current, null);
  assert.is(d.state.history.at(-1)!.score, (0.5 + 0.7 + 0.9) / 3);
});

test('the ack deadline finishes the round with the acks in; the summary says what happened', () => {
  const d = publishing();
  d.at(5000);
  publish(d, 777);
  const deadline = 5000 + TIMING.ackTimeoutMs;
  assert.is(d.state.current!.ackDeadline, deadline);
  assert.equal(d.state.lastPublished, { header: d.globalHeader(), source: 2 });
  d.ack('a', { loss: 0.4 });
  d.ack('b', { ok: false, reason: 'disk full', loss: 0.1 });
  d.at(deadline - 1).tick();
  assert.is(d.state.current!.status, 'acking');
  d.at(deadline).tick();
  assert.is(d.state.current, null);
  const h = d.state.history.at(-1)!;
  assert.equal(h, {
    round: 2,
    session: 1,
    phase: 'fedavg',
    step: 1,
    outcome: 'completed',
    reason: null,
    expected: 3,
    participants: 3,
    acks: 2,
    clients: 3,
    totalSamples: 15,
    bytesIn: 3 * 4 * FEDAVG_PARAMS,
    bytesOut: 777,
    announcedAt: h.announcedAt,
    closedAt: deadline,
    score: 0.4, // the failed install does not score
  });
  assert.ok(h.announcedAt > 0 && h.announcedAt < 5000);
  assert.equal(d.state.session!.scores.at(-1), { round: 2, score: 0.4 });
  assert.is(d.state.agents.b!.lastError, 'could not install round 2: disk full');
  assert.is(d.state.agents.a!.installed, 2);
  // An ack after the round is over changes nothing.
  const before = d.state;
  const late = d.feed({ type: 'ack', now: d.now, message: { type: 'ack', federation: 't', agent: 'c', session: 1, round: 2, phase: 'fedavg', ok: true, loss: 0.1 } });
  assert.is(late.state, before);
});

test('no ack with a loss: the round has no score and is not a candidate', () => {
  const d = publishing();
  publish(d);
  for (const a of ['a', 'b', 'c']) d.ack(a);
  assert.is(d.state.history.at(-1)!.score, null);
  assert.equal(d.state.session!.scores, [], 'no baseLoss reported either: round 0 unscored');
  assert.is(d.state.session!.lastGlobal, 2);
});

test('start while collecting: the deadline gets resumeGraceMs and the announcement is sent again with it', () => {
  const d = new Driver();
  d.start();
  d.presence('a');
  d.presence('b');
  d.update('a');
  const deadline = d.state.current!.deadline; // 1000
  // Restart near the deadline: extended to now + grace.
  d.at(deadline - 100).start();
  assert.is(d.state.current!.deadline, deadline - 100 + TIMING.resumeGraceMs);
  const [ann] = d.lastEffects('announce');
  assert.equal(ann!.message, { ...d.state.current!.announce });
  assert.is(ann!.message.deadline, deadline - 100 + TIMING.resumeGraceMs);
  assert.is(d.state.current!.announce.deadline, ann!.message.deadline);
  assert.is(d.last!.durable, true);
  assert.ok('a' in d.state.current!.updates, 'updates kept');
  // Restart long before the deadline: unchanged.
  const e = new Driver();
  e.start();
  e.presence('a');
  e.presence('b');
  e.at(10).start();
  assert.is(e.state.current!.deadline, TIMING.roundTimeoutMs);
  assert.is(e.lastEffects('announce')[0]!.message.deadline, TIMING.roundTimeoutMs);
  assert.equal(e.lastEffects('publish-global'), [], 'nothing published yet');
});

test('start while aggregating: the sum is asked for again', () => {
  const d = new Driver();
  d.start();
  d.presence('b');
  d.presence('a');
  d.update('b');
  d.update('a');
  assert.is(d.state.current!.status, 'aggregating');
  d.pending.length = 0;
  d.advance(50).start();
  assert.equal(d.lastEffects('aggregate'), [{ type: 'aggregate', round: 1, agents: ['a', 'b'] }]);
  assert.is(d.lastEffects('announce').length, 1);
  assert.is(d.state.current!.status, 'aggregating');
});

test('start while publishing or acking: the global is published again', () => {
  const d = publishing();
  d.pending.length = 0;
  const header = d.globalHeader();
  d.start();
  assert.equal(d.lastEffects('publish-global'), [{ type: 'publish-global', header, source: 2, previousChunks: 1 }]);
  d.pending.length = 0;
  // Only the round's own global: the one retained before it (round 1's) would be overwritten at once.
  assert.is(d.state.lastPublished!.header.round, 1);
  d.feed({ type: 'published', now: d.now, round: 2, chunks: 2, bytes: 100 });
  assert.is(d.state.current!.status, 'acking');
  const ackDeadline = d.state.current!.ackDeadline!;
  d.ack('a', { loss: 1 });
  // Acking, restart just before the ack deadline: republished, the deadline gets the grace.
  d.at(ackDeadline - 10).start();
  assert.equal(d.lastEffects('publish-global'), [{ type: 'publish-global', header, source: 2, previousChunks: 2 }]);
  assert.is(d.state.current!.ackDeadline, ackDeadline - 10 + TIMING.resumeGraceMs);
  assert.ok('a' in d.state.current!.acks);
  // The republished global arriving again does not reset the ack deadline.
  d.feed({ type: 'published', now: d.now + 5, round: 2, chunks: 2, bytes: 100 });
  assert.is(d.state.current!.ackDeadline, ackDeadline - 10 + TIMING.resumeGraceMs);
  assert.is(d.state.current!.bytesOut, 200);
});

test('start when idle: the last global is republished, then the next round is announced when due', () => {
  const d = publishing();
  publish(d);
  for (const a of ['a', 'b', 'c']) d.ack(a, { loss: 1 });
  assert.is(d.state.current, null);
  const last = d.state.lastPublished!;
  assert.is(last.header.round, 2);
  d.start();
  assert.equal(d.lastEffects('publish-global'), [{ type: 'publish-global', header: last.header, source: 2, previousChunks: 2 }]);
  assert.equal(d.lastEffects('announce'), [], 'the next round is not due yet');
  d.advance(TIMING.roundIntervalMs).start();
  assert.is(d.lastEffects('publish-global').length, 1);
  assert.is(d.lastEffects('announce')[0]!.message.round, 3);
  // Once a round is in progress the old global is still the retained one and goes out again too.
  d.start();
  assert.is(d.lastEffects('publish-global')[0]!.header.round, 2);
  // A fresh coordinator has nothing to republish.
  const fresh = new Driver();
  fresh.start();
  assert.equal(fresh.lastEffects('publish-global'), []);
});

test.run();
