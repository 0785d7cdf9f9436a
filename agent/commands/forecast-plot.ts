/**
 * `icosfl-agent predict --plot FILE.svg`: the recent history and the forecast of each metric as
 * one SVG of small multiples (one panel per metric, two per row), each with its unit on the
 * y axis and the time from the last sample on the x axis. Dependency-free, hand-written SVG
 * (as simulate/plot.ts); pure, so tests parse what it returns.
 */
export interface PlotSeries {
  metric: string;
  /** The catalogue's unit (percent, bytes, bytes/s, watts, tasks); '' when unknown. */
  unit: string;
  /** Oldest first; ms since the epoch; NaN values are gaps. */
  historyAt: number[];
  history: number[];
  /** Steps ahead 1…horizon, one sampling interval apart from the last sample. */
  forecast: number[];
}

export interface PlotInput {
  title: string;
  intervalMs: number;
  series: PlotSeries[];
}

const PANEL_W = 460;
const PANEL_H = 230;
const COLUMNS = 2;
const PAD = { left: 64, right: 16, top: 30, bottom: 44 };
const HEADER = 46;
/** Samples further apart than this many intervals are drawn apart. */
const GAP_INTERVALS = 3;
const HISTORY_COLOUR = '#1f2937';
const FORECAST_COLOUR = '#e8590c';

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v: number) => (Math.abs(v) < 1e-9 ? '0' : Number(v.toFixed(2)).toString());

/** The y axis's unit label and the factor its values are divided by (bytes scale to KiB…GiB). */
export function unitScale(unit: string, maxAbs: number): { label: string; factor: number } {
  if (unit === 'bytes' || unit === 'bytes/s') {
    const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (i < names.length - 1 && maxAbs >= 1024 ** (i + 1)) i++;
    return { label: unit === 'bytes' ? names[i]! : `${names[i]}/s`, factor: 1024 ** i };
  }
  const labels: Record<string, string> = { percent: '%', watts: 'W', tasks: 'tasks' };
  return { label: labels[unit] ?? unit, factor: 1 };
}

/** Time on the x axis in seconds, minutes or hours, whichever keeps the numbers readable. */
export function timeScale(spanMs: number): { label: string; factor: number } {
  if (spanMs >= 3 * 3_600_000) return { label: 'h', factor: 3_600_000 };
  if (spanMs >= 3 * 60_000) return { label: 'min', factor: 60_000 };
  return { label: 's', factor: 1000 };
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 50; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function panel(s: PlotSeries, intervalMs: number, x0: number, y0: number): string[] {
  const last = s.historyAt.length ? s.historyAt[s.historyAt.length - 1]! : 0;
  const hist = s.historyAt.map((t, i) => [t - last, s.history[i]!] as const);
  const lastValue = [...s.history].reverse().find(Number.isFinite);
  const fc = s.forecast.map((v, k) => [(k + 1) * intervalMs, v] as const);
  const all = [...hist, ...fc].map(([, v]) => v).filter(Number.isFinite);
  const tMin = hist.length ? hist[0]![0] : 0;
  const tMax = fc.length ? fc[fc.length - 1]![0] : intervalMs;
  const maxAbs = all.length ? Math.max(...all.map(Math.abs)) : 1;
  const yu = unitScale(s.unit, maxAbs);
  const xu = timeScale(tMax - tMin);
  let lo = all.length ? Math.min(...all) / yu.factor : 0;
  let hi = all.length ? Math.max(...all) / yu.factor : 1;
  if (s.unit !== '' && lo >= 0) lo = Math.min(lo, 0); // a rate or a percentage reads best from 0
  if (s.unit === 'percent' && hi <= 100) hi = Math.max(hi, Math.min(100, hi * 1.1));
  if (hi - lo < 1e-9) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.05;
  hi += pad;
  if (lo < 0 || s.unit === '') lo -= pad;
  const w = PANEL_W - PAD.left - PAD.right;
  const h = PANEL_H - PAD.top - PAD.bottom;
  const left = x0 + PAD.left;
  const top = y0 + PAD.top;
  const sx = (t: number) => left + ((t - tMin) / (tMax - tMin || 1)) * w;
  const sy = (v: number) => top + h - ((v / yu.factor - lo) / (hi - lo)) * h;
  const path = (pts: (readonly [number, number])[]) => {
    let d = '';
    let pen = false;
    let prev = -Infinity;
    for (const [t, v] of pts) {
      if (!Number.isFinite(v)) {
        pen = false;
        continue;
      }
      // A stretch with no samples (the daemon was down) is a gap, not a straight line across it.
      if (t - prev > GAP_INTERVALS * intervalMs) pen = false;
      d += `${pen ? 'L' : 'M'}${sx(t).toFixed(1)},${sy(v).toFixed(1)}`;
      pen = true;
      prev = t;
    }
    return d;
  };
  const yLabel = `${s.metric} (${yu.label})`;
  const out = [`<g class="panel" data-metric="${esc(s.metric)}" data-unit="${esc(s.unit)}">`];
  out.push(`<text class="panel-title" x="${left}" y="${y0 + 18}" font-weight="bold">${esc(s.metric)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${w}" height="${h}" fill="#fff" stroke="#d0d5dd"/>`);
  for (const v of ticks(lo, hi, 4)) {
    const y = sy(v * yu.factor);
    out.push(`<line x1="${left}" x2="${left + w}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#eef0f4"/>`);
    out.push(`<text x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="#475467">${num(v)}</text>`);
  }
  for (const v of ticks(tMin / xu.factor, tMax / xu.factor, 5)) {
    const x = sx(v * xu.factor);
    out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${top + h}" y2="${top + h + 4}" stroke="#98a2b3"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${top + h + 16}" text-anchor="middle" fill="#475467">${v > 0 ? '+' : ''}${num(v)}</text>`);
  }
  out.push(`<line class="now" x1="${sx(0).toFixed(1)}" x2="${sx(0).toFixed(1)}" y1="${top}" y2="${top + h}" stroke="#98a2b3" stroke-dasharray="3 3"/>`);
  out.push(`<path class="history" d="${path(hist)}" fill="none" stroke="${HISTORY_COLOUR}" stroke-width="1.4"/>`);
  // The forecast starts at the last value seen, so the two lines join.
  const joined = lastValue === undefined ? fc : [[0, lastValue] as const, ...fc];
  out.push(`<path class="forecast" d="${path(joined)}" fill="none" stroke="${FORECAST_COLOUR}" stroke-width="2" stroke-dasharray="5 3"/>`);
  out.push(`<text class="x-label" x="${left + w / 2}" y="${top + h + 34}" text-anchor="middle" fill="#344054">time from the last sample (${xu.label})</text>`);
  out.push(`<text class="y-label" transform="translate(${x0 + 14},${top + h / 2}) rotate(-90)" text-anchor="middle" fill="#344054">${esc(yLabel)}</text>`);
  out.push('</g>');
  return out;
}

export function forecastPlotSvg(input: PlotInput): string {
  if (!(input.intervalMs > 0)) throw new RangeError(`forecastPlotSvg: intervalMs must be positive, got ${input.intervalMs}`);
  if (input.series.length === 0) throw new RangeError('forecastPlotSvg: no metric to plot');
  const cols = Math.min(COLUMNS, input.series.length);
  const rows = Math.ceil(input.series.length / cols);
  const W = cols * PANEL_W;
  const H = HEADER + rows * PANEL_H;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif" font-size="11">`,
    `<title>${esc(input.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#f8f9fb"/>`,
    `<text x="16" y="22" font-size="14" font-weight="bold">${esc(input.title)}</text>`,
    `<line x1="16" x2="36" y1="36" y2="36" stroke="${HISTORY_COLOUR}" stroke-width="1.6"/><text x="40" y="40">recent samples</text>`,
    `<line x1="150" x2="170" y1="36" y2="36" stroke="${FORECAST_COLOUR}" stroke-width="2" stroke-dasharray="5 3"/><text x="174" y="40">forecast, one step per sampling interval (${num(input.intervalMs / 1000)} s)</text>`,
  ];
  input.series.forEach((s, i) => out.push(...panel(s, input.intervalMs, (i % cols) * PANEL_W, HEADER + Math.floor(i / cols) * PANEL_H)));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
