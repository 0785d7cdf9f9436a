import type { MetricRing } from '../../native/ring.js';

/**
 * The ring's newest samples per metric, as the control socket's `recent` answers them (for
 * `icosfl-agent predict --plot`; offline the command reads the ring itself the same way). A
 * missing sample (NaN in the ring) is null, which JSON keeps.
 */
export interface RecentSamples {
  intervalMs: number;
  /** ms since the epoch, oldest first. */
  timestamps: number[];
  values: Record<string, (number | null)[]>;
}

/** At most this many samples per answer (a day of 5-minute samples is 288). */
export const MAX_RECENT_SAMPLES = 4096;

export function recentSamples(ring: MetricRing, metrics: readonly string[], intervalMs: number, samples: unknown): RecentSamples {
  const n = samples === undefined ? 120 : Number(samples);
  if (!Number.isInteger(n) || n < 1 || n > MAX_RECENT_SAMPLES) throw new RangeError(`samples must be an integer from 1 to ${MAX_RECENT_SAMPLES}, got ${String(samples)}`);
  const { timestamps, values } = ring.latest(n);
  const C = metrics.length;
  const out: Record<string, (number | null)[]> = {};
  metrics.forEach((m, c) => {
    out[m] = Array.from({ length: timestamps.length }, (_, i) => {
      const v = values[i * C + c]!;
      return Number.isFinite(v) ? v : null;
    });
  });
  return { intervalMs, timestamps: Array.from(timestamps), values: out };
}
