import { performance } from 'node:perf_hooks';
import { IcosflError } from '../../common/errors.js';
import { childLogger, type Logger } from '../../common/log.js';
import { cpuSource } from './cpu.js';
import { diskSource } from './disk.js';
import { filesystemSource } from './filesystem.js';
import { gpuSource } from './gpu.js';
import { hwmonSource } from './hwmon.js';
import { loadSource } from './load.js';
import { memorySource } from './memory.js';
import { networkSource } from './network.js';
import { raplSource } from './rapl.js';
import { trackHealth } from './track-health.js';
import type { CollectorSource, MetricDomain, SourceOptions, TrackedCollector } from './types.js';

export { collectAll } from './track-health.js';
export type { Collector, CollectorHealth, MetricDomain, TrackedCollector, SourceOptions } from './types.js';

/** Every metric source, in the order their channels appear in the catalogue. */
export const SOURCES: readonly CollectorSource[] = [
  cpuSource,
  memorySource,
  loadSource,
  networkSource,
  diskSource,
  filesystemSource,
  raplSource,
  hwmonSource,
  gpuSource,
];

/** What each unit can measure: none is negative, a percentage tops out at 100. A metric may narrow it (MetricInfo.domain). */
export const UNIT_DOMAINS: Readonly<Record<string, MetricDomain>> = Object.freeze({
  percent: { min: 0, max: 100 },
  bytes: { min: 0, max: Infinity },
  'bytes/s': { min: 0, max: Infinity },
  watts: { min: 0, max: Infinity },
  tasks: { min: 0, max: Infinity },
});
const UNBOUNDED: MetricDomain = { min: -Infinity, max: Infinity };

/** The catalogue: metric name → the collector that produces it, its unit, its domain and a help line. */
export const METRICS: Readonly<Record<string, { collector: string; unit: string; help: string; domain: MetricDomain }>> = Object.freeze(
  Object.fromEntries(
    SOURCES.flatMap((s) => Object.entries(s.metrics).map(([name, info]) => [name, { collector: s.name, ...info, domain: info.domain ?? UNIT_DOMAINS[info.unit] ?? UNBOUNDED }])),
  ),
);

/** Metrics of the sources that are on by default: those every Linux host has. */
export const DEFAULT_METRICS: readonly string[] = Object.freeze(
  SOURCES.filter((s) => s.defaultEnabled).flatMap((s) => Object.keys(s.metrics)),
);

export interface CreateCollectorsOptions {
  metrics: readonly string[];
  procRoot?: string;
  sysRoot?: string;
  logger?: Logger;
  options?: SourceOptions;
  /** Monotonic milliseconds for rate computations; tests inject one. */
  clock?: () => number;
}

/**
 * Builds the collectors for exactly the configured metrics: a source none of whose metrics is
 * configured is not created at all, and a created one returns only the configured channels.
 * Unknown or repeated names are a config error listing the valid ones. Collectors come back in
 * catalogue order, health-tracked (see track-health.ts).
 */
export function createCollectors(opts: CreateCollectorsOptions): TrackedCollector[] {
  if (!Array.isArray(opts?.metrics) || opts.metrics.some((m) => typeof m !== 'string')) {
    throw new TypeError('createCollectors: metrics must be an array of metric names');
  }
  const valid = Object.keys(METRICS);
  const unknown = opts.metrics.filter((m) => !(m in METRICS));
  if (unknown.length > 0) {
    throw new IcosflError('CONFIG_INVALID', `metrics: unknown metric ${unknown.map((m) => `"${m}"`).join(', ')}; valid metrics are ${valid.join(', ')}`, {
      details: { key: 'metrics', unknown, valid },
    });
  }
  const repeated = opts.metrics.filter((m, i) => opts.metrics.indexOf(m) !== i);
  if (repeated.length > 0) {
    throw new IcosflError('CONFIG_INVALID', `metrics: ${repeated.map((m) => `"${m}"`).join(', ')} listed more than once`, {
      details: { key: 'metrics', repeated },
    });
  }
  if (opts.metrics.length === 0) {
    throw new IcosflError('CONFIG_INVALID', `metrics: the list is empty; choose from ${valid.join(', ')}`, { details: { key: 'metrics' } });
  }
  const logger = opts.logger ?? childLogger('collectors');
  const ctx = {
    procRoot: opts.procRoot ?? '/proc',
    sysRoot: opts.sysRoot ?? '/sys',
    logger,
    options: opts.options ?? {},
    clock: opts.clock ?? (() => performance.now()),
  };
  const out: TrackedCollector[] = [];
  try {
    for (const source of SOURCES) {
      const selected = Object.keys(source.metrics).filter((m) => opts.metrics.includes(m));
      if (selected.length === 0) continue;
      out.push(trackHealth(source.create(ctx), selected, logger));
    }
  } catch (err) {
    for (const c of out) c.close();
    throw err; // a source rejected its options: nothing half-built is left running
  }
  return out;
}
