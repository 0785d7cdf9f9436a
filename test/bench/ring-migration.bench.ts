/**
 * `npm run bench -- ring-migration [DIR]`: what reserving and migrating the agent's ring costs at
 * start, for the default layout (86,400 → 131,072 samples of the 11 default metrics, 7.9 MB), on
 * the filesystem of DIR (default: the OS temp dir). One JSON line on stdout:
 *   {"bench":"ring-migration","create_reserve_ms":…,"migrate_shrink_ms":…,"migrate_metric_list_ms":…,"reopen_ms":…}
 * create: a fresh ring file, every block allocated; migrate_shrink: a full ring to half the
 * capacity (the newest 65,536 kept); migrate_metric_list: one metric swapped; reopen: same layout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { openStateRing } from '../../agent/sampler/open-ring.js';

const METRICS = ['cpu_busy_pct', 'mem_used_pct', 'mem_available_bytes', 'load1', 'load5', 'load15', 'net_rx_bytes_per_s', 'net_tx_bytes_per_s', 'disk_read_bytes_per_s', 'disk_write_bytes_per_s', 'fs_used_pct'];
const REPS = 3;
const log = pino({ level: 'silent' });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const timed = (fn: () => void) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

const base = process.argv[2] ?? tmpdir();
const runs: Record<string, number[]> = { create_reserve_ms: [], migrate_shrink_ms: [], migrate_metric_list_ms: [], reopen_ms: [] };
for (let rep = 0; rep < REPS; rep++) {
  const dir = mkdtempSync(join(base, 'icosfl-ring-migration-'));
  try {
    let ring = openStateRing(dir, METRICS, 86_400, log);
    runs.create_reserve_ms!.push(0);
    ring.close();
    rmSync(join(dir, 'metrics.ring'));
    runs.create_reserve_ms![rep] = timed(() => (ring = openStateRing(dir, METRICS, 86_400, log)));
    const n = ring.capacity;
    ring.pushBatch(Float64Array.from({ length: n }, (_, i) => i), Float32Array.from({ length: n * METRICS.length }, (_, i) => i % 97));
    ring.close();
    runs.migrate_shrink_ms!.push(timed(() => openStateRing(dir, METRICS, 43_200, log).close()));
    const swapped = [...METRICS.slice(0, -1), 'gpu_util_pct'];
    runs.migrate_metric_list_ms!.push(timed(() => openStateRing(dir, swapped, 43_200, log).close()));
    runs.reopen_ms!.push(timed(() => openStateRing(dir, swapped, 43_200, log).close()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(JSON.stringify({ bench: 'ring-migration', dir: base, reps: REPS, ...Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, Number(median(v).toFixed(1))])) }));
