import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { MetricRing } from '../../../native/ring.js';
import { DIST, FIXTURES, tempDir } from '../../helpers/paths.js';

// kill -9 loses nothing push returned for: a real child process, a real SIGKILL, a reopen.
const { dir, cleanup } = tempDir('icosfl-ring-crash-');
test.after(cleanup);

const CHILD = join(FIXTURES, 'ring', 'ring-child.mjs');
const RING_JS = join(DIST, 'native', 'ring.js');

function child(ringPath: string, mode: string, arg: string): ChildProcess {
  return spawn(process.execPath, [CHILD, RING_JS, ringPath, mode, arg], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Resolves with the child's stdout once `until` matches it. */
function waitFor(proc: ChildProcess, until: (out: string) => boolean): Promise<string> {
  let out = '';
  proc.stdout!.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: string) => {
      out += d;
      if (until(out)) resolve(out);
    });
    proc.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before: ${out}`)));
  });
}

async function kill9(proc: ChildProcess): Promise<void> {
  const exited = once(proc, 'exit');
  proc.kill('SIGKILL');
  const [code, signal] = await exited;
  assert.is(code, null);
  assert.is(signal, 'SIGKILL');
}

function openRing(path: string): MetricRing {
  return MetricRing.open({ path, capacity: 16384, channels: 2, schemaTag: 'a,b' });
}

/** Every sample i holds (1e12 + i, i, 2i): checks the first `count` are all there, in order. */
function assertSamples(ring: MetricRing, count: number): void {
  const { timestamps, values } = ring.latest(count);
  assert.is(timestamps.length, count);
  for (let i = 0; i < count; i++) {
    if (timestamps[i] !== 1e12 + i || values[2 * i] !== i || values[2 * i + 1] !== 2 * i) {
      assert.unreachable(`sample ${i}: (${timestamps[i]}, ${values[2 * i]}, ${values[2 * i + 1]})`);
    }
  }
}

test('10,000 pushes, SIGKILL, reopen: all 10,000 are there', async () => {
  const path = join(dir, 'crash.ring');
  const proc = child(path, 'push-then-wait', '10000');
  await waitFor(proc, (out) => out.includes('pushed 10000\n'));
  await kill9(proc);
  const ring = openRing(path);
  assert.is(ring.size, 10_000);
  assertSamples(ring, 10_000);
  assert.equal(Array.from(ring.stats().count), [10_000, 10_000]);
  ring.close();
});

test('SIGKILL in the middle of pushing: every acknowledged sample survives, nothing torn', async () => {
  const path = join(dir, 'mid.ring');
  const proc = child(path, 'push-forever', '1000000');
  const out = await waitFor(proc, (o) => o.includes('pushed 5000\n'));
  await kill9(proc);
  const acknowledged = Math.max(...[...out.matchAll(/pushed (\d+)\n/g)].map((m) => Number(m[1])));
  const ring = openRing(path);
  const size = ring.size;
  assert.ok(size >= Math.min(acknowledged, 16384), `ring holds ${size}, child acknowledged ${acknowledged}`);
  // The ring may hold more than was printed (pushes after the last print); whatever it holds is
  // a consecutive run of whole samples ending at the newest.
  const { timestamps, values } = ring.latest(size);
  const first = timestamps[0]! - 1e12;
  for (let k = 0; k < size; k++) {
    const i = first + k;
    if (timestamps[k] !== 1e12 + i || values[2 * k] !== i || values[2 * k + 1] !== 2 * i) assert.unreachable(`slot ${k} holds a torn or foreign sample`);
  }
  ring.close();
});

test.run();
