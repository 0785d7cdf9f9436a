import type { RoundSummary } from './round/state.js';

/**
 * `icosfl-coordinator rounds export`: every finished round the coordinator keeps, with every
 * field `rounds` shows, for records kept outside it. CSV follows RFC 4180 (a header row, CRLF
 * line ends, a field with a comma, quote or line break quoted and its quotes doubled); times are
 * UTC ISO 8601, an absent value (a reason, a score) is an empty field. JSON is the rounds as the
 * control socket answers them, with the federation and the time of the export.
 */
export const EXPORT_FORMATS = ['csv', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface RoundsExport {
  federation: string;
  /** Epoch ms. */
  exportedAt: number;
  /** Rounds the coordinator has finished; `rounds` holds them all, oldest first. */
  total: number;
  rounds: RoundSummary[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The CSV columns: header name → the cell of a round. */
const COLUMNS: [string, (r: RoundSummary, federation: string) => string | number | null][] = [
  ['federation', (_r, f) => f],
  ['round', (r) => r.round],
  ['session', (r) => r.session],
  ['phase', (r) => r.phase],
  ['step', (r) => r.step],
  ['outcome', (r) => r.outcome],
  ['reason', (r) => r.reason],
  ['expected', (r) => r.expected],
  ['participants', (r) => r.participants],
  ['acks', (r) => r.acks],
  ['clients', (r) => r.clients],
  ['total_samples', (r) => r.totalSamples],
  ['bytes_in', (r) => r.bytesIn],
  ['bytes_out', (r) => r.bytesOut],
  ['announced_at', (r) => iso(r.announcedAt)],
  ['closed_at', (r) => iso(r.closedAt)],
  ['seconds', (r) => Number(((r.closedAt - r.announcedAt) / 1000).toFixed(3))],
  ['score_vs_persistence', (r) => r.score],
];

export const CSV_HEADER = COLUMNS.map(([name]) => name);

/** One RFC 4180 field. */
export function csvField(v: string | number | null): string {
  if (v === null) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : v < 0 ? '-inf' : 'nan') : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function roundsCsv(e: RoundsExport): string {
  const lines = [CSV_HEADER.join(','), ...e.rounds.map((r) => COLUMNS.map(([, cell]) => csvField(cell(r, e.federation))).join(','))];
  return lines.join('\r\n') + '\r\n';
}

export function roundsJson(e: RoundsExport): string {
  return JSON.stringify({ federation: e.federation, exportedAt: iso(e.exportedAt), total: e.total, rounds: e.rounds }, null, 2) + '\n';
}

export function formatExport(format: ExportFormat, e: RoundsExport): string {
  return format === 'csv' ? roundsCsv(e) : roundsJson(e);
}
