import type { SimulationResult } from './experiment.js';

/**
 * A dependency-free SVG of one client's test region: actual values, persistence and the
 * federated forecast one step and `horizon` steps ahead (each plotted at the time it predicts),
 * one panel per metric.
 */
export function forecastSvg(r: SimulationResult, horizon: number): string {
  const W = 900;
  const PANEL = 220;
  const PAD = { left: 60, right: 150, top: 30, bottom: 30 };
  const p = r.plot;
  const n = p.actual.length;
  const series = [
    { name: 'actual', color: '#222', dash: '', pts: p.actual.map((v, i) => [i, v] as const) },
    { name: 'persistence', color: '#999', dash: '4 3', pts: p.persistence.map((v, i) => [i, v] as const) },
    { name: 'federated, 1 step', color: '#1f77b4', dash: '', pts: p.federatedStep1.map((v, i) => [i, v] as const) },
    { name: `federated, ${horizon} steps`, color: '#ff7f0e', dash: '6 3', pts: p.federatedLast.map((v, i) => [i + horizon - 1, v] as const) },
  ];
  const H = r.metrics.length * PANEL + PAD.top;
  const esc = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`];
  out.push(`<text x="${PAD.left}" y="18">client ${esc(p.client)}: forecast vs actual on the held-out tail</text>`);
  r.metrics.forEach((metric, c) => {
    const top = PAD.top + c * PANEL;
    const h = PANEL - PAD.bottom - 10;
    const all = series.flatMap((s) => s.pts.map(([, v]) => v[c]!)).filter(Number.isFinite);
    let lo = Math.min(...all);
    let hi = Math.max(...all);
    if (hi - lo < 1e-9) [lo, hi] = [lo - 1, hi + 1];
    const sx = (i: number) => PAD.left + (i / Math.max(1, n + horizon - 2)) * (W - PAD.left - PAD.right);
    const sy = (v: number) => top + h - ((v - lo) / (hi - lo)) * h;
    out.push(`<rect x="${PAD.left}" y="${top}" width="${W - PAD.left - PAD.right}" height="${h}" fill="none" stroke="#ccc"/>`);
    out.push(`<text x="8" y="${top + 12}">${esc(metric)}</text>`);
    out.push(`<text x="${PAD.left - 4}" y="${top + 10}" text-anchor="end">${hi.toPrecision(4)}</text>`);
    out.push(`<text x="${PAD.left - 4}" y="${top + h}" text-anchor="end">${lo.toPrecision(4)}</text>`);
    series.forEach((s, k) => {
      const d = s.pts.map(([i, v], j) => `${j ? 'L' : 'M'}${sx(i).toFixed(1)},${sy(v[c]!).toFixed(1)}`).join('');
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.3"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      if (c === 0) {
        const ly = top + 14 + k * 16;
        out.push(`<line x1="${W - PAD.right + 10}" x2="${W - PAD.right + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
        out.push(`<text x="${W - PAD.right + 34}" y="${ly}">${esc(s.name)}</text>`);
      }
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
