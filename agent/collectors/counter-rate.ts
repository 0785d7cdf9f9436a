/**
 * Per-second rate of a monotonically increasing kernel counter between two readings.
 * NaN when there is no earlier reading, when no time passed, or when the counter went
 * backwards (a reset: interface re-created, device re-attached, module reloaded) — a
 * rate computed across a reset would be a huge negative or bogus spike in the ring.
 */
export function counterRate(prev: number | undefined, cur: number, elapsedMs: number): number {
  if (prev === undefined || !(elapsedMs > 0) || cur < prev) return NaN;
  return ((cur - prev) * 1000) / elapsedMs;
}
