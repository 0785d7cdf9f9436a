import { join } from 'node:path';
import { ProcFile } from './proc-file.js';
import { malformed } from './read-source.js';
import type { CollectorSource } from './types.js';

/** Parses /proc/loadavg: `0.12 0.26 0.16 1/87 8337` → the three averages. */
export function parseLoadavg(text: string): { load1: number; load5: number; load15: number } {
  const [a, b, c] = text.trim().split(/\s+/, 3).map(Number);
  if (![a, b, c].every((v) => v !== undefined && Number.isFinite(v) && v >= 0)) {
    throw malformed('load', '/proc/loadavg', 'three non-negative numbers');
  }
  return { load1: a!, load5: b!, load15: c! };
}

export const loadSource: CollectorSource = {
  name: 'load',
  defaultEnabled: true,
  metrics: {
    load1: { unit: 'tasks', help: 'Load average over 1 minute' },
    load5: { unit: 'tasks', help: 'Load average over 5 minutes' },
    load15: { unit: 'tasks', help: 'Load average over 15 minutes' },
  },
  create(ctx) {
    const file = new ProcFile('load', join(ctx.procRoot, 'loadavg'));
    return {
      name: 'load',
      metrics: ['load1', 'load5', 'load15'],
      async collect() {
        return parseLoadavg(file.read());
      },
      close() {
        file.close();
      },
    };
  },
};
