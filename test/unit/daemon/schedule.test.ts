import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JitterWindow } from '../../../agent/sampler/jitter.js';
import { FixedSchedule } from '../../../agent/sampler/schedule.js';

test('slots stay on start + k·interval however late each wake-up was (no drift)', () => {
  const s = new FixedSchedule(1000, 100);
  assert.is(s.dueMs, 1000);
  // Each wake-up runs 30 ms late and takes 20 ms; a setTimeout chain would drift 50 ms per slot.
  let due = s.dueMs;
  for (let k = 1; k <= 50; k++) due = s.advance(due + 50);
  assert.is(due, 1000 + 50 * 100);
  assert.is(s.skipped, 0);
});

test('falling more than one slot behind skips the stale slots and counts them', () => {
  const s = new FixedSchedule(0, 100);
  // Slot 0 finished at 350 ms (stalled): slots 1 and 2 are stale, slot 3 (due 300) runs at once.
  assert.is(s.advance(350), 300);
  assert.is(s.skipped, 2);
  assert.is(s.advance(310), 400);
  assert.is(s.skipped, 2);
});

test('a new interval applies from the next slot', () => {
  const s = new FixedSchedule(0, 100);
  s.advance(10); // slot 1 due at 100
  s.setInterval(250);
  assert.is(s.dueMs, 100);
  assert.is(s.advance(105), 350);
  assert.throws(() => s.setInterval(0), /intervalMs must be > 0/);
  assert.throws(() => new FixedSchedule(0, -1), RangeError);
});

test('jitter window: nearest-rank quantiles over the newest values only', () => {
  const w = new JitterWindow(100);
  assert.ok(Number.isNaN(w.summary().p99));
  for (let i = 1; i <= 100; i++) w.record(i);
  assert.equal(w.summary(), { n: 100, p50: 50, p99: 99, max: 100 });
  for (let i = 0; i < 100; i++) w.record(1); // the old values are overwritten
  assert.equal(w.summary(), { n: 100, p50: 1, p99: 1, max: 1 });
  assert.throws(() => new JitterWindow(0), /capacity must be a positive integer/);
});

test.run();
