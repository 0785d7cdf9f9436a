import type { Logger } from '../../common/log.js';

/**
 * The contract between the collectors and the sampler (docs/ARCHITECTURE.md). A collector reads
 * one metric source; `collect()` returns only the metrics it was created for, NaN where a value is
 * not known yet (rates before their second reading, after a counter reset), and throws
 * IcosflError('COLLECTOR_FAILED') when its source cannot be read.
 */
export interface Collector {
  readonly name: string;
  /** The channels this instance produces: the configured subset of its source's metrics. */
  readonly metrics: readonly string[];
  collect(): Promise<Record<string, number>>;
  close?(): void;
}

/** What `health()` reports; the daemon exports it as node_exporter's `_success`/`_duration_seconds`. */
export interface CollectorHealth {
  name: string;
  /** Whether the last collect() succeeded; false before the first one. */
  ok: boolean;
  lastSuccessMs: number | null;   // wall-clock epoch ms
  lastErrorMs: number | null;
  lastError: string | null;       // message of the latest failure, kept after recovery
  lastDurationMs: number | null;  // duration of the latest collect(), success or failure
  successes: number;
  failures: number;
}

/** A collector as createCollectors() hands it out: health-tracked, failures logged once. */
export interface TrackedCollector extends Collector {
  health(): CollectorHealth;
  /** Releases held files and child processes (nvidia-smi); safe to call twice. */
  close(): void;
}

/** Options of the sources that have any; everything has a default (see each source file). */
export interface SourceOptions {
  filesystem?: { mountPoints?: string[] };
  /** A string is a pattern matched against whole interface names, e.g. lo|docker\d+|veth.* */
  network?: { excludeInterfaces?: RegExp | string };
  gpu?: { command?: string; intervalMs?: number };
}

/** Everything a source needs to build its collector. */
export interface SourceContext {
  procRoot: string;
  sysRoot: string;
  logger: Logger;
  options: SourceOptions;
  /** Monotonic milliseconds; rates divide counter deltas by its differences. Tests inject one. */
  clock: () => number;
}

export interface MetricInfo {
  unit: string;
  help: string;
  /** The values the metric can take; absent: its unit's (index.ts UNIT_DOMAINS). */
  domain?: MetricDomain;
}

/** Inclusive bounds of a metric's values; forecasts shown to users are clamped into them. */
export interface MetricDomain {
  min: number;
  max: number;
}

/** One metric source, registered by name in index.ts with its default on/off state. */
export interface CollectorSource {
  name: string;
  /** Whether its metrics are part of DEFAULT_METRICS. Off for sources most hosts lack. */
  defaultEnabled: boolean;
  metrics: Record<string, MetricInfo>;
  create(ctx: SourceContext): Collector;
}
