import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gateProblem, mainStallMsForPing, MainWatchdogSide, WorkerWatchdogSide, type GateState } from '../../../agent/sampler/watchdog-gate.js';

const MS = 1_000_000n;
const base: GateState = { now: 10_000n * MS, lastPostedAt: 9_900n * MS, intervalMs: 100, mainBeat: 9_990n * MS, oldestUnstoredAt: null, mainStallMs: 1500 };

test('the main thread may stall for 3/4 of WATCHDOG_USEC (ping period × 1.5)', () => {
  assert.is(mainStallMsForPing(15_000), 22_500);
  assert.is(mainStallMsForPing(1000), 1500);
});

test('gateProblem: healthy, sampling stalled, main thread stalled (pending sample or heartbeat)', () => {
  assert.is(gateProblem(base), null);
  assert.is(gateProblem({ ...base, lastPostedAt: null }), 'no sample yet');
  // 2 × 100 ms + 1 s is the sampling bound.
  assert.is(gateProblem({ ...base, lastPostedAt: base.now - 1200n * MS }), null);
  assert.match(gateProblem({ ...base, lastPostedAt: base.now - 1201n * MS })!, /^sampling stalled/);
  assert.is(gateProblem({ ...base, oldestUnstoredAt: base.now - 1500n * MS }), null);
  assert.match(gateProblem({ ...base, oldestUnstoredAt: base.now - 1501n * MS })!, /^main thread stalled: a sample has waited/);
  assert.match(gateProblem({ ...base, mainBeat: base.now - 1501n * MS })!, /^main thread stalled: no heartbeat/);
});

test('the worker pings only between open() and close(), and tracks which samples the main thread stored', () => {
  const main = new MainWatchdogSide();
  const worker = new WorkerWatchdogSide(main.buffer);
  let sent = 0;
  const send = () => void sent++;
  worker.posted(0);
  assert.is(worker.ping(100, 1500, send), 'closed', 'closed until READY');
  main.open();
  assert.is(worker.ping(100, 1500, send), 'sent');
  // Sample 0 is still unstored: once it has waited longer than the bound, no ping.
  const later = process.hrtime.bigint() + 2000n * MS;
  assert.ok(worker.state(100, 1500, later).oldestUnstoredAt !== null);
  main.stored(0);
  assert.is(worker.state(100, 1500, later).oldestUnstoredAt, null);
  worker.posted(1);
  worker.posted(2);
  main.stored(1);
  assert.ok(worker.state(100, 1500).oldestUnstoredAt !== null, 'sample 2 still waits');
  main.stored(2);
  assert.is(worker.state(100, 1500).oldestUnstoredAt, null);
  main.close();
  assert.is(worker.ping(100, 1500, send), 'closed', 'nothing after STOPPING');
  assert.is(sent, 1);
});

test.run();
