import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCpuTimes } from '../../../agent/collectors/cpu.js';
import { createCollectors } from '../../../agent/collectors/index.js';
import { ProcFile } from '../../../agent/collectors/proc-file.js';
import { tempDir } from '../../helpers/paths.js';
import { captureLogger } from './log-capture.js';

// ProcFile keeps /proc files open and re-reads them with pread at offset 0; the collectors'
// correctness rests on the kernel regenerating the content on each such read.

const tmp = tempDir('icosfl-procfile-');
test.after(() => tmp.cleanup());

test('real /proc/stat: a held descriptor sees fresh counters on every read', () => {
  const file = new ProcFile('cpu', '/proc/stat');
  const before = parseCpuTimes(file.read());
  const until = Date.now() + 60;
  let spin = 0;
  while (Date.now() < until) spin++; // burn CPU for ≥ 6 jiffies at USER_HZ 100
  const after = parseCpuTimes(file.read());
  file.close();
  assert.ok(spin > 0 && after.total > before.total, `total jiffies ${before.total} → ${after.total}`);
});

test('content larger than the buffer is read whole; in-place rewrites are seen', () => {
  const path = join(tmp.dir, 'diskstats');
  const big = Array.from({ length: 1500 }, (_, i) => `   8 ${i} sd${i} 1 2 3 4 5 6 7 8 9 10 11`).join('\n') + '\n';
  assert.ok(big.length > 32 * 1024, 'bigger than two buffer doublings');
  writeFileSync(path, big);
  const file = new ProcFile('disk', path);
  assert.is(file.read(), big);
  writeFileSync(path, 'short\n');
  assert.is(file.read(), 'short\n');
  file.close();
  file.close();
});

test('a missing file fails naming it, and is opened afresh once it exists', () => {
  const path = join(tmp.dir, 'loadavg');
  const file = new ProcFile('load', path);
  assert.throws(() => file.read(), (e: Error & { code?: string }) => e.code === 'COLLECTOR_FAILED' && e.message === `load: ${path} is missing`);
  writeFileSync(path, '0.5 0.4 0.3 1/2 3\n');
  assert.is(file.read(), '0.5 0.4 0.3 1/2 3\n');
  rmSync(path);
  file.close();
  assert.throws(() => file.read(), /is missing/);
});

test('network.excludeInterfaces: a pattern string matches whole names; a bad one is rejected', async () => {
  const procRoot = join(tmp.dir, 'proc');
  const write = (eth0: number, docker0: number): void =>
    writeFileSync(
      join(procRoot, 'net', 'dev'),
      'Inter-|\n face |\n' + [['lo', 1], ['eth0', eth0], ['docker0', docker0], ['docker0x', docker0]].map(([n, v]) => `${n}: ${v} 0 0 0 0 0 0 0 ${v} 0 0 0 0 0 0 0`).join('\n') + '\n',
    );
  (await import('node:fs')).mkdirSync(join(procRoot, 'net'), { recursive: true });
  write(0, 0);
  let now = 0;
  const [net] = createCollectors({ metrics: ['net_rx_bytes_per_s'], procRoot, clock: () => now, options: { network: { excludeInterfaces: 'lo|docker\\d+' } } });
  await net!.collect();
  write(1000, 500);
  now = 1000;
  // eth0 1000 + docker0x 500 (not a whole-name match of docker\d+); lo and docker0 excluded.
  assert.equal(await net!.collect(), { net_rx_bytes_per_s: 1500 });
  net!.close();
  const { logger } = captureLogger();
  assert.throws(
    () => createCollectors({ metrics: ['net_tx_bytes_per_s'], logger, options: { network: { excludeInterfaces: 'eth(' } } }),
    (e: Error) => e instanceof RangeError && /network.excludeInterfaces: "eth\(" is not a valid regular expression/.test(e.message),
  );
});

test.run();
