import { Counter, Gauge, Registry } from 'prom-client';
import type { LogDestinationStats } from '../../common/log-destination.js';
import { STORAGE_KINDS, type StorageHealth } from '../../common/storage-health.js';
import type { MetricRing } from '../../native/ring.js';
import type { Sampler } from '../sampler/sampler.js';

/**
 * The daemon's Prometheus metrics, in a registry of its own (never prom-client's global one) that
 * the training job adds its gauges to. Values are read from the sampler when scraped, not updated
 * per sample, so an endpoint nobody scrapes costs nothing.
 * Collector health follows node_exporter: `icosfl_collector_success` (1/0) and
 * `icosfl_collector_duration_seconds` per collector, for the latest sample.
 * `icosfl_sample_value{metric}`: the newest stored sample per channel, beside the forecasts.
 * Storage: `icosfl_storage_write_failures_total{kind}` and `icosfl_storage_degraded` (1 while a
 * state file or the log cannot be written) from common/storage-health.ts.
 */
export function createMetricsRegistry(sampler: Sampler, ring: MetricRing, storage: StorageHealth, logStats: LogDestinationStats, channelNames: readonly string[]): Registry {
  const registry = new Registry();
  new Gauge({
    name: 'icosfl_sample_value',
    help: "The newest sample of each metric the ring holds, in the metric's unit (what icosfl_forecast forecasts; absent while missing)",
    labelNames: ['metric'],
    registers: [registry],
    collect() {
      this.reset();
      if (ring.isClosed || ring.size === 0) return;
      const { values } = ring.latest(1);
      channelNames.forEach((metric, c) => {
        const v = values[c]!;
        if (Number.isFinite(v)) this.set({ metric }, v);
      });
    },
  });
  new Counter({
    name: 'icosfl_storage_write_failures_total',
    help: 'Failed writes (disk full, quota, I/O error) of state files, the ring and the log, by file kind',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const totals = storage.report().write_failures;
      for (const kind of STORAGE_KINDS) this.inc({ kind }, totals[kind]);
    },
  });
  new Gauge({
    name: 'icosfl_storage_degraded',
    help: "1 while some state file's or the log's latest write failed (see status: storage), else 0",
    registers: [registry],
    collect() {
      this.set(storage.degraded ? 1 : 0);
    },
  });
  new Counter({
    name: 'icosfl_log_lines_dropped_total',
    help: 'Log lines dropped because stdout could not be written and the pending buffer was full',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(logStats.dropped);
    },
  });
  new Gauge({
    name: 'icosfl_collector_success',
    help: 'Whether the collector succeeded in the latest sample (1) or failed (0)',
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of sampler.collectors()) this.set({ collector: c.name }, c.ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'icosfl_collector_duration_seconds',
    help: 'How long the collector took in the latest sample',
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of sampler.collectors()) this.set({ collector: c.name }, c.lastDurationMs / 1000);
    },
  });
  new Gauge({
    name: 'icosfl_ring_samples',
    help: 'Samples the metric ring holds',
    registers: [registry],
    collect() {
      this.set(ring.size);
    },
  });
  new Gauge({
    name: 'icosfl_ring_fill_ratio',
    help: 'Samples held over ring capacity (1 = the oldest are being overwritten)',
    registers: [registry],
    collect() {
      this.set(ring.size / ring.capacity);
    },
  });
  new Counter({
    name: 'icosfl_samples_stored_total',
    help: 'Samples pushed into the ring since the daemon started',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sampler.storedCount);
    },
  });
  new Counter({
    name: 'icosfl_sampler_skipped_slots_total',
    help: 'Sampling slots dropped because the sampler fell more than one interval behind',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sampler.skipped);
    },
  });
  new Gauge({
    name: 'icosfl_sampler_jitter_seconds',
    help: 'Wake-up delay of the sampler (actual - scheduled) over its last 3600 samples',
    labelNames: ['quantile'],
    registers: [registry],
    collect() {
      const j = sampler.jitterSummary();
      if (j.n === 0) return;
      this.set({ quantile: '0.5' }, j.p50 / 1000);
      this.set({ quantile: '0.99' }, j.p99 / 1000);
      this.set({ quantile: '1' }, j.max / 1000);
    },
  });
  new Gauge({
    name: 'icosfl_sampler_last_sample_timestamp_seconds',
    help: 'Wall-clock time of the newest sample stored',
    registers: [registry],
    collect() {
      const t = sampler.lastSampleTime;
      if (t !== null) this.set(t / 1000);
    },
  });
  return registry;
}
