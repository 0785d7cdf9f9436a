// npm run bench -- collectors [SAMPLES]: CPU time per sample of the default /proc collectors on
// this machine's real /proc, against systeminformation's currentLoad()+mem() (the obvious
// alternative) measured in the same process. Ends with one JSON line on stdout.
import { cpuUsage } from 'node:process';
import si from 'systeminformation';
import { collectAll, createCollectors } from '../../agent/collectors/index.js';

const SAMPLES = Number(process.argv[2] ?? 1000);
const BASELINE_SAMPLES = Math.max(20, Math.round(SAMPLES / 10));
const METRICS = [
  'cpu_busy_pct', 'mem_used_pct', 'mem_available_bytes', 'load1', 'load5', 'load15',
  'net_rx_bytes_per_s', 'net_tx_bytes_per_s', 'disk_read_bytes_per_s', 'disk_write_bytes_per_s', 'fs_used_pct',
];

/** CPU microseconds (user + system) per call of fn, after a warm-up. */
async function cpuMicrosPerCall(n: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(); // let the JIT settle first
  const before = cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const used = cpuUsage(before);
  return (used.user + used.system) / n;
}

const collectors = createCollectors({ metrics: METRICS });
process.stderr.write(`collectors: ${SAMPLES} samples of ${METRICS.length} metrics…\n`);
const ours = await cpuMicrosPerCall(SAMPLES, () => collectAll(collectors));
process.stderr.write(`systeminformation currentLoad()+mem(): ${BASELINE_SAMPLES} samples…\n`);
const baseline = await cpuMicrosPerCall(BASELINE_SAMPLES, () => Promise.all([si.currentLoad(), si.mem()]));
process.stderr.write(`ours ${ours.toFixed(1)} µs/sample, baseline ${baseline.toFixed(1)} µs/sample\n`);
console.log(
  JSON.stringify({
    bench: 'collectors',
    samples: SAMPLES,
    metrics: METRICS.length,
    cpu_us_per_sample: Number(ours.toFixed(1)),
    cpu_pct_of_core_at_1s: Number((ours / 1e4).toFixed(4)),
    baseline: 'systeminformation currentLoad()+mem() (6 of these metrics)',
    baseline_cpu_us_per_sample: Number(baseline.toFixed(1)),
    speedup_vs_baseline: Number((baseline / ours).toFixed(1)),
  }),
);
