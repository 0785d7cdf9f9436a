import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FileJournal, MemoryJournal } from '../../../coordinator/round/journal.js';
import type { CoordinatorState } from '../../../coordinator/round/state.js';
import { tempDir } from '../../helpers/paths.js';
import { Driver, TIMING, rebuild, testSettings } from './driver.js';

// Event sourcing: the durable events (and the snapshots the reducer asks for), replayed through
// the same reducer, rebuild exactly the state a killed coordinator had, at any point of a session.

const tmp = tempDir('icosfl-replay-');
test.after(() => tmp.cleanup());
const silent = pino({ level: 'silent' });

const RIDGE = [[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]];

/** A session with late joiners, departures, an abandoned round, a restart and a deadline; `check` runs after every step. */
function session(d: Driver, check: (where: string) => void): void {
  const step = (where: string, fn: () => unknown) => {
    fn();
    check(where);
  };
  step('start', () => d.at(1000).start());
  step('presence a', () => d.at(1010).presence('a'));
  step('presence b: the quorum, round 1 announced', () => d.at(1020).presence('b'));
  step('presence c', () => d.at(1030).presence('c'));
  step('update b', () => d.at(1040).update('b', { samples: 4 }));
  step('update a', () => d.at(1050).update('a', { samples: 6 }));
  step('c goes offline: collection complete', () => d.at(1060).presence('c', 'offline'));
  step('effects', () => d.at(1070).runEffects());
  step('ack a', () => d.at(1080).ack('a', { ridgeLosses: RIDGE }));
  step('ack b', () => d.at(1090).ack('b', { ridgeLosses: RIDGE }));
  step('tick: round 2', () => d.at(1090 + TIMING.roundIntervalMs).tick());
  step('c back', () => d.advance(5).presence('c'));
  step('update c', () => d.advance(5).update('c', { baseLoss: 0.9 }));
  step('restart', () => d.advance(5).start());
  step('deadline tick', () => d.at(d.state.current!.deadline).tick());
  step('abandoned: next round', () => d.advance(TIMING.roundIntervalMs).tick());
  for (const a of ['a', 'b', 'c']) step(`update ${a}`, () => d.advance(3).update(a, { baseLoss: 1.1, samples: 5 }));
  step('effects', () => d.advance(3).runEffects());
  step('ack a', () => d.advance(3).ack('a', { loss: 0.5 }));
  step('ack deadline', () => d.at(d.state.current!.ackDeadline!).tick());
  step('tick: round 4', () => d.advance(TIMING.roundIntervalMs).tick());
  step('update a, b', () => {
    d.advance(2).update('a');
    d.update('b');
  });
  step('restart while collecting', () => d.advance(2).start());
  step('update c: complete', () => d.advance(2).update('c'));
  step('restart while aggregating', () => d.advance(2).start());
  step('effects', () => d.advance(2).runEffects());
  step('restart while acking', () => {
    d.pending.length = 0;
    d.advance(2).start();
  });
  step('republished', () => d.advance(2).runEffects());
  for (const a of ['a', 'b', 'c']) step(`ack ${a}`, () => d.advance(2).ack(a, { loss: 0.7 }));
  step('final', () => d.advance(TIMING.roundIntervalMs).tick());
  step('final published', () => d.advance(2).runEffects());
  for (const a of ['a', 'b', 'c']) step(`final ack ${a}`, () => d.advance(2).ack(a));
  step('idle restart', () => d.advance(2).start());
  assert.is(d.state.done, true, 'the scenario ran the whole session');
  assert.equal(
    d.state.history.map((h) => [h.round, h.phase, h.outcome]),
    [
      [1, 'ridge', 'completed'],
      [2, 'fedavg', 'abandoned'],
      [3, 'fedavg', 'completed'],
      [4, 'fedavg', 'completed'],
      [5, 'final', 'completed'],
    ],
  );
}

test('MemoryJournal: after every event, snapshot + journal replay to a deep-equal state', () => {
  const d = new Driver(testSettings(), { now: 1000 });
  let checks = 0;
  session(d, (where) => {
    assert.equal(rebuild(d.journal, d.settings, d.now), d.state, where);
    checks++;
  });
  assert.ok(checks > 30);
});

test('the journal alone (no snapshot yet) replays from the first event', () => {
  // A driver whose checkpoints are never taken: everything replays from the initial state.
  const d = new Driver(testSettings(), { now: 1000 });
  const journal = new MemoryJournal();
  d.journal = { load: () => journal.load(), append: (e) => journal.append(e), sync: () => undefined, checkpoint: () => undefined, updateBodies: () => [], putAggregate: () => undefined, getAggregate: () => undefined, release: () => undefined, close: () => undefined };
  session(d, (where) => assert.equal(rebuild(journal, d.settings, 99_999), d.state, where));
  assert.ok(journal.load().events.length > 30);
  assert.is(journal.load().snapshot, undefined);
});

test('FileJournal: crash (close) and reopen at every step, replay to a deep-equal state', () => {
  const dir = join(tmp.dir, 'file');
  mkdirSync(dir);
  const first = new FileJournal(dir, silent);
  first.load();
  const d = new Driver(testSettings(), { now: 1000, journal: first });
  let reopened = 0;
  session(d, (where) => {
    d.journal.close();
    const j = new FileJournal(dir, silent);
    const rebuilt = rebuild(j, d.settings, d.now);
    // JSON is what the snapshot is: the live state must already be JSON-clean.
    assert.equal(JSON.parse(JSON.stringify(d.state)) as CoordinatorState, d.state, `${where}: JSON-clean`);
    assert.equal(rebuilt, d.state, where);
    d.journal = j;
    reopened++;
  });
  d.journal.close();
  assert.ok(reopened > 30);
});

test('rejections are bookkeeping: replay gives the same course, without their counters', () => {
  const d = new Driver(testSettings(), { now: 0 });
  d.start();
  d.presence('a');
  d.presence('b');
  d.update('a', { round: 9 });
  d.update('a', { samples: 5, windows: 4 });
  d.update('a');
  d.update('b', { codec: 'ckks' });
  const rebuilt = rebuild(d.journal, d.settings, d.now);
  assert.equal(d.state.rejected, { 'unknown-round': 1, weight: 1, 'wrong-codec': 1 });
  assert.equal(rebuilt.rejected, {});
  assert.is(d.state.agents.b!.lastError?.startsWith('wrong-codec'), true);
  assert.is(rebuilt.agents.b!.lastError, null);
  const strip = (s: CoordinatorState) => ({ ...s, rejected: {}, agents: Object.fromEntries(Object.entries(s.agents).map(([k, v]) => [k, { ...v, lastError: null }])) });
  assert.equal(strip(rebuilt), strip(d.state));
});

test.run();
