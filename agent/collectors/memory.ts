import { join } from 'node:path';
import { ProcFile } from './proc-file.js';
import { malformed } from './read-source.js';
import type { CollectorSource } from './types.js';

export interface MemoryReading {
  usedPct: number;
  availableBytes: number;
}

/**
 * Parses /proc/meminfo (`Key:   value kB` lines). "Used" is MemTotal − MemAvailable: the kernel's
 * own estimate of what can be had without swapping, which counts reclaimable cache as free
 * (MemFree alone would show a healthy box as nearly full). Kernels before 3.14 lack
 * MemAvailable; there MemFree + Buffers + Cached + SReclaimable is the usual approximation.
 */
export function parseMeminfo(text: string): MemoryReading {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
    if (m) kb.set(m[1]!, Number(m[2]));
    if (kb.has('MemAvailable') && kb.has('MemTotal')) break; // the 3rd line: skip the other ~50
  }
  const total = kb.get('MemTotal');
  if (total === undefined || total <= 0) throw malformed('memory', '/proc/meminfo', 'a positive MemTotal line');
  let available = kb.get('MemAvailable');
  if (available === undefined) {
    const free = kb.get('MemFree');
    if (free === undefined) throw malformed('memory', '/proc/meminfo', 'a MemAvailable or MemFree line');
    available = free + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0) + (kb.get('SReclaimable') ?? 0);
  }
  available = Math.min(available, total);
  return { usedPct: ((total - available) / total) * 100, availableBytes: available * 1024 };
}

export const memorySource: CollectorSource = {
  name: 'memory',
  defaultEnabled: true,
  metrics: {
    mem_used_pct: { unit: 'percent', help: 'Memory in use: (MemTotal - MemAvailable) / MemTotal' },
    mem_available_bytes: { unit: 'bytes', help: 'MemAvailable: memory available without swapping' },
  },
  create(ctx) {
    const file = new ProcFile('memory', join(ctx.procRoot, 'meminfo'));
    return {
      name: 'memory',
      metrics: ['mem_used_pct', 'mem_available_bytes'],
      async collect() {
        const r = parseMeminfo(file.read());
        return { mem_used_pct: r.usedPct, mem_available_bytes: r.availableBytes };
      },
      close() {
        file.close();
      },
    };
  },
};
