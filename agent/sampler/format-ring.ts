/**
 * Renders what a ring holds as a table for people (`icosfl-agent sample`): one row per channel
 * with its count, mean, min and max, then its newest values, oldest → newest, under their times.
 * Values are shown in readable units (KiB/s, GiB, %); NaN (not known yet) shows as '·'.
 */
export interface RingReport {
  path: string;
  size: number;
  capacity: number;
  channels: string[];
  units: string[];
  stats: { count: Float64Array; mean: Float64Array; min: Float64Array; max: Float64Array };
  latest: { timestamps: Float64Array; values: Float32Array };
}

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '·';
  if (unit === 'percent') return `${v.toFixed(1)} %`;
  if (unit === 'bytes' || unit === 'bytes/s') {
    let x = Math.abs(v);
    let i = 0;
    while (x >= 1024 && i < BINARY.length - 1) {
      x /= 1024;
      i++;
    }
    const text = `${(Math.sign(v) * x).toFixed(i === 0 ? 0 : 1)} ${BINARY[i]}`;
    return unit === 'bytes/s' ? `${text}/s` : text;
  }
  if (unit === 'watts') return `${v.toFixed(1)} W`;
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
}

function hms(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function formatRingReport(r: RingReport): string {
  const n = r.latest.timestamps.length;
  const header = ['metric', 'count', 'mean', 'min', 'max', ...Array.from(r.latest.timestamps, hms)];
  const rows = r.channels.map((name, c) => {
    const u = r.units[c] ?? '';
    const latest = Array.from({ length: n }, (_, i) => formatValue(r.latest.values[i * r.channels.length + c]!, u));
    return [name, String(r.stats.count[c] ?? 0), formatValue(r.stats.mean[c]!, u), formatValue(r.stats.min[c]!, u), formatValue(r.stats.max[c]!, u), ...latest];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  const newest = n > 0 ? new Date(r.latest.timestamps[n - 1]!).toISOString() : 'none';
  return [
    `ring ${r.path}`,
    `  ${r.size} samples held (capacity ${r.capacity}), newest ${newest}`,
    '',
    line(header),
    ...rows.map(line),
    '',
  ].join('\n');
}
