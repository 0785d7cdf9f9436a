/**
 * Small text helpers for the human output of `status`, `agents` and `rounds` (the `--json`
 * output is the control socket's answer as is).
 */

/** A left-aligned table with a header row; numbers read better right-aligned, so `right` names those columns. */
export function table(headers: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Key/value rows, keys padded to one width. */
export function keyValues(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

export function duration(s: number): string {
  const t = Math.max(0, Math.round(s));
  const d = Math.floor(t / 86_400);
  const h = Math.floor((t % 86_400) / 3600);
  const m = Math.floor((t % 3600) / 60);
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  return m ? `${m}m${t % 60}s` : `${t}s`;
}

/** An epoch-ms time relative to now: '12s ago', 'in 3s', '-' for none. */
export function relative(at: number | null | undefined, now: number): string {
  if (at === null || at === undefined) return '-';
  const s = (at - now) / 1000;
  return s >= 0 ? `in ${duration(s)}` : `${duration(-s)} ago`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A pooled validation loss relative to persistence (1 = as good as repeating the last value). */
export function score(s: number | null): string {
  if (s === null) return '-';
  if (!Number.isFinite(s)) return 'inf';
  const pct = (s - 1) * 100;
  return `${s.toFixed(3)} (${pct <= 0 ? '' : '+'}${pct.toFixed(1)}%)`;
}
