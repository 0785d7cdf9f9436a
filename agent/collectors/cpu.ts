import { join } from 'node:path';
import { ProcFile } from './proc-file.js';
import { malformed } from './read-source.js';
import type { CollectorSource } from './types.js';

/** Jiffies since boot summed over all CPUs, from the aggregate `cpu` line of /proc/stat. */
export interface CpuTimes {
  total: number;
  idle: number;
}

/**
 * Parses the first line of /proc/stat: `cpu user nice system idle iowait irq softirq steal guest
 * guest_nice`. guest and guest_nice are already included in user and nice, so the total stops at
 * steal. idle + iowait count as idle (as psutil and top do); steal counts as busy because the
 * workload wanted the CPU and did not get it.
 */
export function parseCpuTimes(text: string): CpuTimes {
  const end = text.indexOf('\n');
  const line = end < 0 ? text : text.slice(0, end);
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu' || fields.length < 5) throw malformed('cpu', 'the first line of /proc/stat', '"cpu" and at least 4 counters');
  const n = fields.slice(1, 9).map(Number);
  if (n.some((v) => !Number.isFinite(v))) throw malformed('cpu', 'the first line of /proc/stat', 'numeric counters');
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = n;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait };
}

/**
 * Busy percentage between two readings; NaN without an earlier reading or across a counter
 * reset. Clamped to [0, 100] because iowait may step backwards on some kernels.
 */
export function cpuBusyPercent(prev: CpuTimes | undefined, cur: CpuTimes): number {
  if (prev === undefined) return NaN;
  const total = cur.total - prev.total;
  if (!(total > 0)) return NaN;
  const busy = (total - (cur.idle - prev.idle)) / total;
  return Math.min(100, Math.max(0, busy * 100));
}

export const cpuSource: CollectorSource = {
  name: 'cpu',
  defaultEnabled: true,
  metrics: { cpu_busy_pct: { unit: 'percent', help: 'Share of CPU time not idle or waiting on I/O, all CPUs, since the last sample' } },
  create(ctx) {
    const file = new ProcFile('cpu', join(ctx.procRoot, 'stat'));
    let prev: CpuTimes | undefined;
    return {
      name: 'cpu',
      metrics: ['cpu_busy_pct'],
      async collect() {
        const cur = parseCpuTimes(file.read());
        const value = cpuBusyPercent(prev, cur);
        prev = cur;
        return { cpu_busy_pct: value };
      },
      close() {
        file.close();
      },
    };
  },
};
