import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isWholeDisk } from '../../../agent/collectors/disk.js';
import { fsUsedPercent } from '../../../agent/collectors/filesystem.js';
import { collectAll, createCollectors, DEFAULT_METRICS } from '../../../agent/collectors/index.js';
import { FIXTURES, tempDir } from '../../helpers/paths.js';
import { captureLogger } from './log-capture.js';

// The /proc readers on a fixture tree (test/fixtures/collectors/proc-t0 → proc-t1, one second
// apart on an injected clock) with golden values worked out by hand in the fixture README, then
// on this machine's real /proc.

const FIX = join(FIXTURES, 'collectors');
const tmp = tempDir('icosfl-collectors-');
test.after(() => tmp.cleanup());

/**
 * Rewrites every file of `dst` in place with the content of the same file in `src`: like the
 * kernel regenerating /proc, the inode stays the one the collectors hold open.
 */
function rewriteInPlace(src: string, dst: string): void {
  for (const name of readdirSync(src)) {
    const from = join(src, name);
    if (statSync(from).isDirectory()) rewriteInPlace(from, join(dst, name));
    else writeFileSync(join(dst, name), readFileSync(from));
  }
}

const PROC_METRICS = [
  'cpu_busy_pct', 'mem_used_pct', 'mem_available_bytes', 'load1', 'load5', 'load15',
  'net_rx_bytes_per_s', 'net_tx_bytes_per_s', 'disk_read_bytes_per_s', 'disk_write_bytes_per_s',
];

test('fixture tree: golden values from t0 to t1', async () => {
  const procRoot = join(tmp.dir, 'proc');
  cpSync(join(FIX, 'proc-t0'), procRoot, { recursive: true });
  let now = 5000;
  const collectors = createCollectors({ metrics: PROC_METRICS, procRoot, sysRoot: join(FIX, 'sys'), clock: () => now, logger: captureLogger().logger });
  const first = await collectAll(collectors);
  for (const m of ['cpu_busy_pct', 'net_rx_bytes_per_s', 'net_tx_bytes_per_s', 'disk_read_bytes_per_s', 'disk_write_bytes_per_s']) {
    assert.ok(Number.isNaN(first[m]), `${m} has no delta on the first sample`);
  }
  assert.is(first.mem_used_pct, ((16318412 - 9871236) / 16318412) * 100);
  assert.is(first.mem_available_bytes, 9871236 * 1024);
  assert.equal([first.load1, first.load5, first.load15], [1.52, 0.87, 0.45]);

  rewriteInPlace(join(FIX, 'proc-t1'), procRoot);
  now += 1000;
  const second = await collectAll(collectors);
  assert.equal(second, {
    cpu_busy_pct: (850 / 1600) * 100, // 1600 jiffies passed, 700 idle + 50 iowait
    mem_used_pct: ((16318412 - 9870212) / 16318412) * 100,
    mem_available_bytes: 9870212 * 1024,
    load1: 1.61,
    load5: 0.9,
    load15: 0.46,
    net_rx_bytes_per_s: 1_250_000 + 50_000, // eno1 + eno2; lo's 999,999 left out
    net_tx_bytes_per_s: 250_000 + 10_000,
    disk_read_bytes_per_s: (2048 + 1000) * 512, // sda + nvme0n1; partitions, dm-0 and loop0 left out
    disk_write_bytes_per_s: (4096 + 3000) * 512,
  });
  for (const c of collectors) assert.ok(c.health().ok, c.name);
});

test('disk: whole physical disks only; names decide where /sys/block is absent', () => {
  const sys = join(FIX, 'sys');
  assert.equal(['sda', 'nvme0n1', 'sda1', 'nvme0n1p1', 'dm-0', 'loop0'].map((n) => isWholeDisk(sys, n)), [true, true, false, false, false, false]);
  const none = join(tmp.dir, 'no-sys');
  const names = ['sda', 'vda', 'xvdb', 'nvme0n1', 'mmcblk0', 'sda1', 'vda15', 'nvme0n1p2', 'mmcblk0p1', 'loop3', 'zram0', 'dm-1', 'md127', 'sr0'];
  assert.equal(names.map((n) => isWholeDisk(none, n)), [true, true, true, true, true, false, false, false, false, false, false, false, false, false]);
});

test('a missing source fails with COLLECTOR_FAILED naming the file, is logged once, and recovers', async () => {
  const procRoot = join(tmp.dir, 'flaky');
  cpSync(join(FIX, 'proc-t0'), procRoot, { recursive: true });
  const { logger, lines } = captureLogger();
  const [load, memory] = createCollectors({ metrics: ['mem_used_pct', 'load1'], procRoot, logger }).sort((a, b) => a.name.localeCompare(b.name));
  rmSync(join(procRoot, 'loadavg'));
  for (let i = 0; i < 5; i++) {
    const sample = await collectAll([load!, memory!]);
    assert.ok(Number.isNaN(sample.load1));
    assert.ok(sample.mem_used_pct! > 0, 'the other collector keeps sampling');
  }
  await load!.collect().then(
    () => assert.unreachable('collect() should throw'),
    (err: { code: string; message: string }) => {
      assert.is(err.code, 'COLLECTOR_FAILED');
      assert.match(err.message, /flaky\/loadavg is missing/);
    },
  );
  const h = load!.health();
  assert.is(h.ok, false);
  assert.is(h.failures, 6);
  assert.is(h.successes, 0);
  assert.match(h.lastError!, /loadavg is missing/);
  assert.ok(h.lastDurationMs! >= 0 && h.lastErrorMs! > 0);
  assert.is(lines.filter((l) => l.collector === 'load' && l.level === 40).length, 1, 'reported once, not per sample');

  cpSync(join(FIX, 'proc-t0', 'loadavg'), join(procRoot, 'loadavg'));
  assert.equal(await load!.collect(), { load1: 1.52 });
  assert.ok(load!.health().ok && load!.health().lastSuccessMs! >= h.lastErrorMs!);
  assert.is(lines.filter((l) => l.collector === 'load' && l.msg === 'collector recovered').length, 1);
});

test('real /proc of this machine: every default metric in a sane range', async () => {
  const collectors = createCollectors({ metrics: [...DEFAULT_METRICS], logger: captureLogger().logger });
  await collectAll(collectors);
  // Some disk and CPU activity between the two samples so the rates have something to measure.
  execFileSync('sh', ['-c', 'head -c 2000000 /dev/urandom | md5sum >/dev/null; sleep 0.2']);
  const s = await collectAll(collectors);
  assert.equal(Object.keys(s).sort(), [...DEFAULT_METRICS].sort());
  assert.ok(s.cpu_busy_pct! >= 0 && s.cpu_busy_pct! <= 100, `cpu_busy_pct ${s.cpu_busy_pct}`);
  assert.ok(s.mem_used_pct! > 0 && s.mem_used_pct! < 100, `mem_used_pct ${s.mem_used_pct}`);
  const totalBytes = (await import('node:os')).totalmem();
  assert.ok(s.mem_available_bytes! > 0 && s.mem_available_bytes! <= totalBytes, `mem_available_bytes ${s.mem_available_bytes}`);
  for (const m of ['load1', 'load5', 'load15', 'net_rx_bytes_per_s', 'net_tx_bytes_per_s', 'disk_read_bytes_per_s', 'disk_write_bytes_per_s']) {
    assert.ok(Number.isFinite(s[m]) && s[m]! >= 0, `${m} ${s[m]}`);
  }
  for (const c of collectors) assert.ok(c.health().ok, `${c.name}: ${c.health().lastError}`);
});

test('filesystem: df formula on literal numbers, and agrees with df(1) on real mount points', async () => {
  // 1000 blocks, 300 free of which 250 available to users (50 reserved): used 700 / (700 + 250).
  assert.is(fsUsedPercent({ blocks: 1000, bfree: 300, bavail: 250 }), (700 / 950) * 100);
  assert.ok(Number.isNaN(fsUsedPercent({ blocks: 0, bfree: 0, bavail: 0 })));
  for (const mount of ['/', tmp.dir]) {
    const [fs] = createCollectors({ metrics: ['fs_used_pct'], options: { filesystem: { mountPoints: [mount] } } });
    const { fs_used_pct: ours } = await fs!.collect();
    // df rounds the percentage up to a whole number.
    const dfPct = Number(/(\d+)%/.exec(execFileSync('df', ['-P', mount], { encoding: 'utf8' }).split('\n')[1]!)![1]);
    assert.ok(ours! <= dfPct && ours! > dfPct - 1.01, `${mount}: ours ${ours} vs df ${dfPct}%`);
  }
});

test('filesystem: the fullest mount point wins; a missing one fails; bad options are rejected', async () => {
  const [both] = createCollectors({ metrics: ['fs_used_pct'], options: { filesystem: { mountPoints: ['/', tmp.dir] } } });
  const [root] = createCollectors({ metrics: ['fs_used_pct'] });
  const rootPct = (await root!.collect()).fs_used_pct!;
  assert.ok((await both!.collect()).fs_used_pct! >= rootPct);
  const [missing] = createCollectors({ metrics: ['fs_used_pct'], options: { filesystem: { mountPoints: ['/no/such/mount'] } }, logger: captureLogger().logger });
  await missing!.collect().then(
    () => assert.unreachable('should fail'),
    (err: Error) => assert.match(err.message, /statfs of mount point \/no\/such\/mount failed/),
  );
  const [pseudo] = createCollectors({ metrics: ['fs_used_pct'], options: { filesystem: { mountPoints: ['/', '/proc'] } }, logger: captureLogger().logger });
  await pseudo!.collect().then(
    () => assert.unreachable('should fail'),
    (err: Error) => assert.match(err.message, /\/proc has size 0/),
  );
  assert.throws(() => createCollectors({ metrics: ['fs_used_pct'], options: { filesystem: { mountPoints: ['relative/path'] } } }), (e: Error) => e instanceof RangeError && /filesystem.mountPoints/.test(e.message));
});

test.run();
