import { performance } from 'node:perf_hooks';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Collector, CollectorHealth, TrackedCollector } from './types.js';

/**
 * Wraps a source's collector: keeps only the configured metrics (data minimisation: the other
 * values a source file happens to contain never leave this function), records health for the
 * daemon's `_success`/`_duration_seconds` gauges, and logs a failure once per run of failures
 * (and the recovery once), so a missing source does not flood the journal every second.
 * collect() still throws; collectAll() is the never-failing way to sample.
 */
export function trackHealth(inner: Collector, selected: readonly string[], logger: Logger): TrackedCollector {
  const state: CollectorHealth = {
    name: inner.name,
    ok: false,
    lastSuccessMs: null,
    lastErrorMs: null,
    lastError: null,
    lastDurationMs: null,
    successes: 0,
    failures: 0,
  };
  let failing = false;
  return {
    name: inner.name,
    metrics: selected,
    async collect() {
      const started = performance.now();
      try {
        const all = await inner.collect();
        const out: Record<string, number> = {};
        for (const m of selected) out[m] = all[m] ?? NaN;
        state.lastDurationMs = performance.now() - started;
        state.ok = true;
        state.lastSuccessMs = Date.now();
        state.successes++;
        if (failing) logger.info({ collector: inner.name, failures: state.failures }, 'collector recovered');
        failing = false;
        return out;
      } catch (cause) {
        const err = isIcosflError(cause)
          ? cause
          : new IcosflError('COLLECTOR_FAILED', `${inner.name}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
        state.lastDurationMs = performance.now() - started;
        state.ok = false;
        state.lastErrorMs = Date.now();
        state.lastError = err.message;
        state.failures++;
        if (!failing) logger.warn({ collector: inner.name, code: err.code, error: err.message }, 'collector failed; its metrics are NaN until it recovers');
        failing = true;
        throw err;
      }
    },
    health() {
      return { ...state };
    },
    close() {
      inner.close?.();
    },
  };
}

/**
 * One sample from every collector, concurrently. Never rejects: a failed collector's metrics
 * are NaN (its failure is already logged and in its health), so sampling never stops.
 */
export async function collectAll(collectors: readonly Collector[]): Promise<Record<string, number>> {
  const parts = await Promise.all(
    collectors.map((c) =>
      c.collect().catch(() => Object.fromEntries(c.metrics.map((m) => [m, NaN])) as Record<string, number>),
    ),
  );
  return Object.assign({}, ...parts) as Record<string, number>;
}
