/**
 * A drift-free fixed cadence: slot k is due at `start + k·interval` on a monotonic clock, so the
 * error of one wake-up never carries into the next (a chain of setTimeout(interval) calls adds
 * every wake-up's lateness and drifts by seconds per hour). When the sampler falls more than one
 * slot behind (the host was suspended, the worker starved), the stale slots are skipped and
 * counted rather than fired in a burst of back-to-back samples.
 */
export class FixedSchedule {
  private start: number;
  private interval: number;
  private k = 0;
  /** Slots dropped because they were already stale when the sampler got to them. */
  skipped = 0;

  constructor(startMs: number, intervalMs: number) {
    if (!(intervalMs > 0)) throw new RangeError(`FixedSchedule: intervalMs must be > 0, got ${intervalMs}`);
    this.start = startMs;
    this.interval = intervalMs;
  }

  /** When the current slot is due. */
  get dueMs(): number {
    return this.start + this.k * this.interval;
  }

  get intervalMs(): number {
    return this.interval;
  }

  /**
   * Moves to the next slot after the current one has run; `nowMs` is when it finished. Returns the
   * new due time. The next slot is k+1, or the latest slot already due if that is later.
   */
  advance(nowMs: number): number {
    const latestDue = Math.floor((nowMs - this.start) / this.interval);
    const next = Math.max(this.k + 1, latestDue);
    this.skipped += next - (this.k + 1);
    this.k = next;
    return this.dueMs;
  }

  /** A new interval takes effect from the next slot, anchored at the current one's due time. */
  setInterval(intervalMs: number): void {
    if (!(intervalMs > 0)) throw new RangeError(`FixedSchedule.setInterval: intervalMs must be > 0, got ${intervalMs}`);
    this.start = this.dueMs;
    this.k = 0;
    this.interval = intervalMs;
  }
}
