import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFederationModel, RIDGE_POOLED_LAMBDAS } from '../../../common/protocol/federation-model.js';
import { bestRound, ridgeLambdas, weightCap } from '../../../coordinator/round/lifecycle.js';
import type { AckRecord, SessionState } from '../../../coordinator/round/state.js';
import { Driver, TIMING, testSettings } from './driver.js';

// A whole session through the pure reducer: quorum before the first announcement, ridge →
// FedAvg 1 → FedAvg 2 → final, bases, weight caps, model selection and ridge penalties.

const RIDGE_A = [1.0, 0.9, 0.8, 0.85, 0.95, 1.1];
const RIDGE_B = [null, 0.7, 0.9, 0.6, 1.0, 1.2]; // pooled: skip, 0.8, 0.85, 0.725, 0.975, 1.15 → 0.1

test('no round is announced until min_agents are online, then a ridge round', () => {
  const d = new Driver();
  d.start();
  assert.is(d.state.current, null);
  assert.equal(d.lastEffects('announce'), []);
  d.at(10).presence('a');
  assert.is(d.state.current, null);
  assert.is(d.last!.durable, true, 'a presence is journaled: it decides the next announcement');
  d.at(15).presence('b', 'waiting-for-data');
  assert.is(d.state.current, null, 'an agent waiting for data does not count');
  d.at(20).presence('b', 'busy');
  const [ann] = d.lastEffects('announce');
  assert.ok(ann, 'announced once two agents are online');
  assert.equal(ann!.message, {
    type: 'announce',
    federation: 't',
    session: 1,
    round: 1,
    phase: 'ridge',
    step: 0,
    base: 0,
    deadline: 20 + TIMING.roundTimeoutMs,
    issuedAt: 20,
    codec: 'plaintext',
    keyId: '',
    weightCap: Math.floor(1e6 / 3), // max(2, ceil(1.25 · 2)) shares
    model: d.settings.model,
    configHash: d.settings.configHash,
  });
  const c = d.state.current!;
  assert.is(c.status, 'collecting');
  assert.equal(c.expected, ['a', 'b']);
  assert.is(d.state.nextRound, 2);
  assert.equal(d.state.session, { session: 1, startedAt: 20, ridge: null, completedSteps: 0, lastGlobal: 0, scores: [] });
});

test('an agent not heard from within presenceTimeoutMs is not online', () => {
  const d = new Driver();
  d.start();
  d.at(0).presence('a');
  d.at(TIMING.presenceTimeoutMs + 1).presence('b');
  assert.is(d.state.current, null, "a's presence is too old");
  d.presence('a');
  assert.is(d.state.current?.round, 1);
});

test('weightCap = floor(maxRoundSamples / max(minAgents, ceil(1.25 · online)))', () => {
  assert.is(weightCap(1e6, 2, 2), 333_333);
  assert.is(weightCap(1e6, 4, 2), 200_000);
  assert.is(weightCap(1e6, 1, 3), 333_333);
  assert.is(weightCap(2 ** 20, 1000, 2), 838);
  assert.is(weightCap(2 ** 20, 4, 2), 209_715);
  assert.is(weightCap(3, 100, 2), 1, 'never below 1');
  // Through the reducer: five agents online, quorum 2 → 7 shares.
  const d = new Driver();
  d.start();
  for (const a of ['a', 'b']) d.presence(a);
  assert.is(d.state.current!.weightCap, 333_333);
  const e = new Driver(testSettings({ minAgents: 5 }));
  e.start();
  for (const a of ['a', 'b', 'c', 'd', 'e']) e.presence(a);
  assert.is(e.state.current!.weightCap, Math.floor(1e6 / 7));
  assert.is(e.announce().weightCap, Math.floor(1e6 / 7));
});

test('a full session: ridge → fedavg 1 → fedavg 2 → final, with bases, scores and selection', () => {
  const d = new Driver();
  d.start();
  d.at(10).presence('a');
  d.at(20).presence('b');

  // Round 1: ridge. Closes early (both expected answered), aggregates sorted, publishes, acks.
  d.at(100).update('b', { samples: 7 });
  assert.is(d.state.current!.status, 'collecting');
  assert.is(d.last!.durable, true);
  d.at(110).update('a', { samples: 5 });
  assert.equal(d.lastEffects('aggregate'), [{ type: 'aggregate', round: 1, agents: ['a', 'b'] }]);
  assert.is(d.state.current!.status, 'aggregating');
  d.runEffects();
  assert.is(d.state.current!.status, 'acking');
  assert.equal(d.globalHeader(), { type: 'global', federation: 't', session: 1, round: 1, phase: 'ridge', clients: 2, totalSamples: 12, codec: 'plaintext' });
  assert.is(d.state.current!.ackDeadline, 110 + TIMING.ackTimeoutMs);
  d.at(120).ack('a', { ridgeLosses: [RIDGE_A] });
  d.at(130).ack('b', { ridgeLosses: [RIDGE_B] });
  assert.is(d.state.current, null);
  assert.equal(d.state.session!.ridge, { round: 1, lambdas: [0.1] });
  assert.equal(d.lastEffects('release'), [{ type: 'release', round: 1, keepAggregates: [1] }]);
  assert.is(d.lastEffects('checkpoint').length, 1);
  assert.is(d.state.nextAt, 130 + TIMING.roundIntervalMs);

  // Round 2: FedAvg step 1 from the seeded model, announced roundIntervalMs later.
  d.at(229).tick();
  assert.is(d.state.current, null);
  d.at(230).tick();
  let a = d.announce();
  assert.equal([a.round, a.phase, a.step, a.base, a.session], [2, 'fedavg', 1, 0, 1]);
  assert.is(a.selection, undefined);
  d.playRound(['a', 'b'], { update: (x) => ({ baseLoss: x === 'a' ? 0.9 : 1.1 }), ack: (x) => ({ loss: x === 'a' ? 0.8 : 0.6 }) });
  assert.is(d.state.current, null);
  assert.equal(d.state.session!.scores, [{ round: 0, score: 1.0 }, { round: 2, score: 0.7 }]);
  assert.is(d.state.session!.completedSteps, 1);
  assert.is(d.state.session!.lastGlobal, 2);
  assert.equal(d.lastEffects('release'), [{ type: 'release', round: 2, keepAggregates: [2] }]);

  // Round 3: step 2 from round 2's global.
  d.advance(TIMING.roundIntervalMs).tick();
  a = d.announce();
  assert.equal([a.round, a.phase, a.step, a.base], [3, 'fedavg', 2, 2]);
  d.playRound(['a', 'b'], { update: () => ({ baseLoss: 0.7 }), ack: (x) => ({ loss: x === 'a' ? 0.7 : 0.9 }) });
  assert.equal(d.state.session!.scores, [{ round: 0, score: 1.0 }, { round: 2, score: 0.7 }, { round: 3, score: 0.8 }]);
  assert.equal(d.lastEffects('release'), [{ type: 'release', round: 3, keepAggregates: [2, 3] }]);

  // Round 4: final. No collection: the best round's aggregate goes out at once.
  d.advance(TIMING.roundIntervalMs).tick();
  a = d.announce();
  assert.equal([a.round, a.phase, a.step, a.base], [4, 'final', 0, 3]);
  assert.equal(a.selection, { bestRound: 2, ridgeLambdas: [0.1] });
  const [pub] = d.lastEffects('publish-global');
  assert.equal(pub, {
    type: 'publish-global',
    header: { type: 'global', federation: 't', session: 1, round: 4, phase: 'final', clients: 0, totalSamples: 0, codec: 'plaintext', selection: { bestRound: 2, ridgeLambdas: [0.1] } },
    source: 2,
    previousChunks: 1,
  });
  assert.is(d.state.current!.status, 'publishing');
  assert.is(d.state.current!.source, 2);
  d.runEffects({ chunks: 3 });
  assert.is(d.state.globalChunks, 3);
  d.ack('a');
  assert.is(d.state.current!.status, 'acking', 'the final waits for every expected agent');
  d.ack('b');
  assert.is(d.state.current, null);
  assert.is(d.state.session, null);
  assert.is(d.state.sessionsDone, 1);
  assert.is(d.state.done, true);
  assert.is(d.lastEffects('done').length, 1);
  assert.equal(d.lastEffects('release'), [{ type: 'release', round: 4, keepAggregates: [2] }]);
  assert.equal(d.state.lastPublished?.source, 2);

  assert.equal(
    d.state.history.map((h) => [h.round, h.phase, h.step, h.outcome, h.participants, h.acks, h.score]),
    [
      [1, 'ridge', 0, 'completed', 2, 2, null],
      [2, 'fedavg', 1, 'completed', 2, 2, 0.7],
      [3, 'fedavg', 2, 'completed', 2, 2, 0.8],
      [4, 'final', 0, 'completed', 0, 2, null],
    ],
  );
  // Done: nothing is announced any more, however long the agents wait.
  d.advance(10 * TIMING.sessionIntervalMs).presence('a');
  d.presence('b');
  d.tick();
  assert.is(d.state.current, null);
  assert.is(d.state.nextRound, 5);
});

test('the best round is the least pooled score, round 0 from step 1 baseLoss, ties to the earliest', () => {
  const finalSelection = (base: [number, number], step1: [number, number], step2: [number, number]) => {
    const d = new Driver(testSettings({ model: parseFederationModel({ metrics: ['cpu'], rounds: 2, ridgeFeatures: 0, lookback: 4, horizon: 2, hiddenUnits: 3 }) }));
    d.start();
    d.presence('a');
    d.presence('b');
    assert.is(d.announce().phase, 'fedavg', 'no ridge round without ridge features');
    d.playRound(['a', 'b'], { update: (x) => ({ baseLoss: x === 'a' ? base[0] : base[1] }), ack: (x) => ({ loss: x === 'a' ? step1[0] : step1[1] }) });
    d.advance(TIMING.roundIntervalMs).tick();
    d.playRound(['a', 'b'], { ack: (x) => ({ loss: x === 'a' ? step2[0] : step2[1] }) });
    d.advance(TIMING.roundIntervalMs).tick();
    assert.is(d.announce().phase, 'final');
    return { selection: d.announce().selection, source: d.state.current!.source, publish: d.lastEffects('publish-global')[0]! };
  };
  assert.equal(finalSelection([1, 1], [0.8, 0.8], [0.9, 0.9]).selection, { bestRound: 1, ridgeLambdas: [] });
  assert.equal(finalSelection([0.9, 1.1], [0.8, 0.6], [0.7, 0.6]).selection!.bestRound, 2);
  // Ties: the earliest candidate (round 0 = the seeded model: an empty body).
  const tie0 = finalSelection([0.8, 0.8], [0.7, 0.9], [1, 1]);
  assert.equal(tie0.selection, { bestRound: 0, ridgeLambdas: [] });
  assert.is(tie0.source, 0);
  assert.is(tie0.publish.source, 0);
  assert.is(finalSelection([1, 1], [0.7, 0.7], [0.6, 0.8]).selection!.bestRound, 1);
  // A loss over the cap (2) counts as the cap: Infinity ties with 2.
  assert.is(finalSelection([5, Infinity], [2, 2], [Infinity, 2]).selection!.bestRound, 0);
});

test('bestRound and ridgeLambdas as functions', () => {
  const session = (scores: { round: number; score: number }[], lastGlobal = 9): SessionState => ({ session: 1, startedAt: 0, ridge: null, completedSteps: 2, lastGlobal, scores });
  assert.is(bestRound(session([])), 9, 'nothing scored: the newest global');
  assert.is(bestRound(session([{ round: 0, score: 1 }, { round: 3, score: 0.5 }, { round: 4, score: 0.5 }])), 3);
  assert.is(bestRound(session([{ round: 0, score: 0.5 }, { round: 3, score: 0.5 }])), 0);
  assert.is(bestRound(session([{ round: 3, score: NaN }, { round: 4, score: 0.9 }])), 4);

  const ack = (ridgeLosses?: (number | null)[][]): AckRecord => ({ ok: true, loss: null, at: 0, ...(ridgeLosses ? { ridgeLosses } : {}) });
  assert.is(RIDGE_POOLED_LAMBDAS.length, 6);
  assert.equal(ridgeLambdas([ack([RIDGE_A]), ack([RIDGE_B])], 1), [0.1]);
  // Two heads, chosen independently.
  assert.equal(ridgeLambdas([ack([RIDGE_A, [3, 2, 1, 0.5, 0.4, 0.45]]), ack([RIDGE_B, [3, 2, 1, 0.5, 0.6, 0.3]])], 2), [0.1, 10]);
  // A penalty one agent could not evaluate is skipped for everyone.
  assert.equal(ridgeLambdas([ack([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]), ack([[null, 0.2, 0.3, 0.4, 0.5, 0.6]])], 1), [1e-3]);
  // None usable → []; a head nobody reported → []; no ridge reports at all → [].
  assert.equal(ridgeLambdas([ack([[null, null, null, null, null, null]])], 1), []);
  assert.equal(ridgeLambdas([ack([RIDGE_A])], 2), []);
  assert.equal(ridgeLambdas([ack(), ack()], 1), []);
  assert.equal(ridgeLambdas([], 1), []);
  // A row of the wrong length is ignored; the other agent decides.
  assert.equal(ridgeLambdas([ack([[0.1, 0.2]]), ack([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])], 1), [10]);
  // Capped at 2: Infinity and 5 tie with 2, the earliest penalty wins the tie.
  assert.equal(ridgeLambdas([ack([[Infinity, 5, 2, 3, 2.5, 2]])], 1), [1e-4]);
});

test('ridge penalties through the reducer: no usable penalty → an empty list, the session goes on', () => {
  const d = new Driver();
  d.start();
  d.presence('a');
  d.presence('b');
  d.playRound(['a', 'b'], { ack: () => ({ ridgeLosses: [[null, null, null, null, null, null]] }) });
  assert.equal(d.state.session!.ridge, { round: 1, lambdas: [] });
  assert.ok(d.effects.some((e) => e.type === 'log' && /no ridge penalty could be chosen/.test(e.msg)));
  // A failed install does not vote.
  const e = new Driver();
  e.start();
  e.presence('a');
  e.presence('b');
  e.playRound(['a', 'b'], { ack: (x) => (x === 'a' ? { ok: false, reason: 'singular', ridgeLosses: [RIDGE_A] } : { ridgeLosses: [RIDGE_B] }) });
  // Only b's row: 0.6 at index 3 → 0.1, but b has null at 0: skipped; min over 1..5 is 0.6.
  assert.equal(e.state.session!.ridge, { round: 1, lambdas: [0.1] });
  assert.is(e.state.agents.a!.lastError, 'could not install round 1: singular');
  assert.is(e.state.agents.a!.installed, null);
  assert.is(e.state.agents.b!.installed, 1);
});

test('the sessions limit: done after the last; 0 runs on; the next session after sessionIntervalMs', () => {
  const runSession = (d: Driver) => {
    if (!d.state.current) d.tick();
    for (let i = 0; i < 4; i++) {
      d.playRound(['a', 'b'], { ack: () => ({ loss: 1, ridgeLosses: [RIDGE_A] }) });
      if (i < 3) d.advance(TIMING.roundIntervalMs).tick();
    }
  };
  const two = new Driver(testSettings({ sessions: 2 }));
  two.start();
  two.presence('a');
  two.presence('b');
  runSession(two);
  assert.is(two.state.sessionsDone, 1);
  assert.is(two.state.done, false);
  assert.equal(two.lastEffects('done'), []);
  const end = two.now;
  two.at(end + TIMING.sessionIntervalMs - 1).tick();
  assert.is(two.state.current, null);
  two.presence('a');
  two.presence('b');
  two.at(end + TIMING.sessionIntervalMs).tick();
  const a = two.announce();
  assert.equal([a.session, a.round, a.phase, a.base], [2, 5, 'ridge', 0]);
  runSession(two);
  assert.is(two.state.sessionsDone, 2);
  assert.is(two.state.done, true);
  assert.is(two.lastEffects('done').length, 1);

  const forever = new Driver(testSettings({ sessions: 0 }));
  forever.start();
  forever.presence('a');
  forever.presence('b');
  runSession(forever);
  assert.is(forever.state.done, false);
  forever.advance(TIMING.sessionIntervalMs).presence('a');
  forever.presence('b');
  assert.is(forever.announce().session, 2);
});

test.run();
