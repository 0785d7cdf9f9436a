import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricRing } from '../../native/ring.js';
import type { Sampler } from '../sampler/sampler.js';

/**
 * The daemon's Prometheus metrics, in a registry of its own (never prom-client's global one) that
 * the training job adds its gauges to. Values are read from the sampler when scraped, not updated
 * per sample, so an endpoint nobody scrapes costs nothing.
 * Collector health follows node_exporter: `icosfl_collector_success` (1/0) and
 * `icosfl_collector_duration_seconds` per collector, for the latest sample.
 */
export function createMetricsRegistry(sampler: Sampler, ring: MetricRing): Registry {
  const registry = new Registry();
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
