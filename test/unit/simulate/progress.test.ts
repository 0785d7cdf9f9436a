import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDuration, Progress } from '../../../simulate/progress.js';

/** simulate/progress.ts with a hand-driven clock; what `icosfl-simulate run` prints is simulate-cli.test.ts's. */
function driven(total: number, tty: boolean) {
  let now = 0;
  const writes: string[] = [];
  const p = new Progress({ total, noun: 'rounds', tty, write: (t) => void writes.push(t), now: () => now });
  return { p, writes, tick: (ms: number) => (now += ms) };
}

test('the line: done/total, percentage, time so far and left from the pace so far, what just finished', () => {
  const { p, tick } = driven(42, false);
  assert.is(p.line(0), 'rounds 0/42 (0 %), 0s so far, time left not known yet');
  tick(12_000);
  assert.is(p.line(6, 'round 6 (fedavg 5/40) completed, 50 agents'), 'rounds 6/42 (14 %), 12s so far, ~1m12s left; round 6 (fedavg 5/40) completed, 50 agents');
  assert.is(p.line(42), 'rounds 42/42 (100 %), 12s so far, done');
});

test('off a terminal: a line at each tenth of the work and at the end, each ending its line', () => {
  const { p, writes, tick } = driven(50, false);
  for (let i = 1; i <= 50; i++) {
    tick(1000);
    p.update(i);
  }
  p.end();
  assert.is(writes.length, 10, writes.join(''));
  assert.equal(writes.map((w) => w.match(/^rounds (\d+)\//)![1]), ['5', '10', '15', '20', '25', '30', '35', '40', '45', '50']);
  assert.ok(writes.every((w) => w.endsWith('\n') && !w.includes('\r')));
});

test('off a terminal, slow work: a line at least every 30 s between the tenths', () => {
  const { p, writes, tick } = driven(1000, false);
  for (let i = 1; i <= 99; i++) {
    tick(10_000);
    p.update(i);
  }
  // 990 s, no tenth reached: every third update is 30 s after the last line.
  assert.is(writes.length, 33);
  assert.match(writes[0]!, /^rounds 3\/1000 \(0 %\), 30s so far, ~2h46m left\n$/);
});

test('on a terminal: one line rewritten in place on every update, ended once', () => {
  const { p, writes, tick } = driven(3, true);
  for (let i = 1; i <= 3; i++) {
    tick(2000);
    p.update(i, `round ${i}`);
  }
  p.end();
  assert.is(writes.length, 4);
  for (const w of writes.slice(0, 3)) assert.match(w, /^\rrounds \d\/3 .*\x1b\[K$/);
  assert.ok(writes.slice(0, 3).every((w) => !w.includes('\n')));
  assert.is(writes[3], '\n');
});

test('on a terminal, a log record steps around the line: cleared, the record, the line again', () => {
  const { p, writes, tick } = driven(4, true);
  tick(1000);
  p.update(1);
  p.around(() => void writes.push('12:00:00.000 INFO  simulate    round closed\n'));
  assert.equal(writes.slice(1), ['\r\x1b[K', '12:00:00.000 INFO  simulate    round closed\n', `${p.line(1)}\x1b[K`]);
  const off = driven(4, false);
  off.p.update(1);
  off.p.around(() => void off.writes.push('record\n'));
  assert.equal(off.writes.slice(1), ['record\n'], 'off a terminal the record is written as it is, nothing is rewritten');
});

test('durations read as people say them; a bad total is refused', () => {
  assert.equal([0, 1499, 59_000, 61_000, 3_600_000, 7_380_000].map(formatDuration), ['0s', '1s', '59s', '1m01s', '1h00m', '2h03m']);
  assert.throws(() => new Progress({ total: 0, noun: 'rounds', tty: false, write: () => undefined }), /total must be a positive integer, got 0/);
});

test.run();
