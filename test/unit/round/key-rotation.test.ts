import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keysOf } from '../../../coordinator/round/state.js';
import { Driver, TIMING, rebuild, testSettings } from './driver.js';

/**
 * Key rotation in the pure round reducer: the next epoch is offered (keys-offered), rounds switch
 * to it only between sessions and only once min_agents online agents hold its key, every round
 * announces its epoch, and an update of another epoch is refused.
 */
const OLD = 'a'.repeat(32);
const NEW = 'b'.repeat(32);
const RIDGE = [[2, 1.5, 1, 0.9, 0.95, 1.1]];

function driver(): Driver {
  const d = new Driver(testSettings({ codec: 'ckks', keyId: OLD, keyEpoch: 3, sessions: 0 }));
  d.start();
  return d;
}

function presence(d: Driver, agent: string, keys: string[]): void {
  d.feed({ type: 'presence', now: d.now, message: { type: 'presence', federation: 't', agent, state: 'online', at: d.now, keys } });
}

/** Ridge, two FedAvg rounds and the final round of the session in progress. */
function runSession(d: Driver): void {
  if (!d.state.current) d.tick();
  for (let i = 0; i < 4; i++) {
    d.playRound(['a', 'b'], { ack: () => ({ loss: 1, ridgeLosses: RIDGE }) });
    if (i < 3) d.advance(TIMING.roundIntervalMs).tick();
  }
}

test('rounds announce the configured key epoch; an offered epoch waits for the session to end', () => {
  const d = driver();
  presence(d, 'a', [OLD]);
  presence(d, 'b', [OLD]);
  const first = d.announce();
  assert.equal([first.keyId, first.keyEpoch], [OLD, 3]);
  d.feed({ type: 'keys-offered', now: d.now, epoch: 4, keyId: NEW });
  assert.equal(keysOf(d.state, d.settings).next, { epoch: 4, keyId: NEW });
  assert.ok(d.last!.durable, 'the offer is journaled');
  presence(d, 'a', [OLD, NEW]);
  presence(d, 'b', [OLD, NEW]);
  // Every round of the session in progress stays under the old key, the final one included.
  const epochs: number[] = [];
  for (let i = 0; i < 4; i++) {
    epochs.push(d.announce().keyEpoch!);
    d.playRound(['a', 'b'], { ack: () => ({ loss: 1, ridgeLosses: RIDGE }) });
    if (i < 3) d.advance(TIMING.roundIntervalMs).tick();
  }
  assert.equal(epochs, [3, 3, 3, 3]);
  d.advance(TIMING.sessionIntervalMs);
  presence(d, 'a', [OLD, NEW]);
  presence(d, 'b', [OLD, NEW]);
  d.tick();
  const next = d.announce();
  assert.equal([next.session, next.keyId, next.keyEpoch], [2, NEW, 4]);
  assert.equal(keysOf(d.state, d.settings), { active: { epoch: 4, keyId: NEW }, next: null, since: d.now });
  assert.ok(d.effects.some((e) => e.type === 'log' && e.msg.startsWith('key epoch switched')));
});

test('the switch waits until min_agents online agents hold the next key', () => {
  const d = driver();
  presence(d, 'a', [OLD]);
  presence(d, 'b', [OLD]);
  d.feed({ type: 'keys-offered', now: d.now, epoch: 4, keyId: NEW });
  runSession(d);
  d.advance(TIMING.sessionIntervalMs);
  presence(d, 'a', [OLD, NEW]);
  presence(d, 'b', [OLD]); // one holder; min_agents is 2
  d.tick();
  assert.equal([d.announce().session, d.announce().keyEpoch], [2, 3]);
  runSession(d);
  d.advance(TIMING.sessionIntervalMs);
  presence(d, 'b', [NEW]);
  presence(d, 'a', [OLD, NEW]);
  d.tick();
  assert.equal([d.announce().session, d.announce().keyEpoch, d.announce().keyId], [3, 4, NEW]);
});

test('an update of another key epoch is refused; the round announces it in the global too', () => {
  const d = driver();
  presence(d, 'a', [OLD]);
  presence(d, 'b', [OLD]);
  const u = d.updateMessage('a');
  assert.is(u.keyEpoch, 3, 'updateFor copies the announcement\'s epoch');
  d.feed({ type: 'update', now: d.now, message: { ...u, keyEpoch: 4 } });
  assert.is(d.state.rejected['wrong-key-epoch'], 1);
  assert.not.ok('a' in d.state.current!.updates);
  d.update('a');
  d.update('b');
  d.runEffects();
  assert.is(d.globalHeader().keyEpoch, 3);
});

test('an offer of the active key, or of an older epoch, changes nothing; a replayed journal switches the same way', () => {
  const d = driver();
  d.feed({ type: 'keys-offered', now: d.now, epoch: 3, keyId: OLD });
  assert.is(keysOf(d.state, d.settings).next, null);
  d.feed({ type: 'keys-offered', now: d.now, epoch: 2, keyId: NEW });
  assert.is(keysOf(d.state, d.settings).next, null);
  presence(d, 'a', [OLD, NEW]);
  presence(d, 'b', [OLD, NEW]);
  d.feed({ type: 'keys-offered', now: d.now, epoch: 4, keyId: NEW });
  runSession(d);
  d.advance(TIMING.sessionIntervalMs);
  presence(d, 'a', [NEW]);
  presence(d, 'b', [NEW]);
  d.tick();
  assert.is(d.announce().keyEpoch, 4);
  const replayed = rebuild(d.journal, d.settings, 0);
  assert.equal(replayed.keys, d.state.keys);
  assert.equal(replayed.current?.announce, d.state.current?.announce);
});

test('a state from before rotation (no keys field) runs under the configured key', () => {
  const d = driver();
  const { keys: _k, ...old } = d.state;
  void _k;
  assert.equal(keysOf(old, d.settings), { active: { epoch: 3, keyId: OLD }, next: null, since: 0 });
});

test.run();
