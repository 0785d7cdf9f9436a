// The SVG of `predict --plot` from hand-made samples: well-formed XML (Python's ElementTree),
// one panel per metric with its unit, bytes scaled to a binary unit, names escaped, gaps drawn
// as gaps, and the refusals of the pure function.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { forecastPlotSvg, ticks, timeScale, unitScale, type PlotInput } from '../../../agent/commands/forecast-plot.js';

const T = 1_700_000_000_000;
const INTERVAL = 1000;
const times = Array.from({ length: 30 }, (_, i) => T + i * INTERVAL);
const INPUT: PlotInput = {
  title: 'model <1> & "two"',
  intervalMs: INTERVAL,
  series: [
    { metric: 'cpu_busy_pct', unit: 'percent', historyAt: times, history: times.map((_, i) => 40 + (i % 5)), forecast: [41, 42, 43] },
    { metric: 'mem_used_bytes', unit: 'bytes', historyAt: times, history: times.map((_, i) => (3 + i / 100) * 1024 ** 3), forecast: [3.3 * 1024 ** 3, 3.31 * 1024 ** 3, 3.32 * 1024 ** 3] },
    { metric: 'net_rx<&>', unit: 'bytes/s', historyAt: times, history: times.map((_, i) => (i === 10 ? NaN : 2048 * i)), forecast: [60_000, 61_000, 62_000] },
  ],
};

/** Parsed with ElementTree (refuses malformed XML): the title and, per panel, its attributes, labels and path commands. */
function parse(svg: string): { title: string; panels: { metric: string; unit: string; y: string; x: string; history: string; forecast: string }[] } {
  const py = `
import json, sys, xml.etree.ElementTree as ET
ns = {'s': 'http://www.w3.org/2000/svg'}
root = ET.fromstring(sys.stdin.buffer.read())
assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag
out = {'title': root.find('s:title', ns).text, 'panels': []}
for g in root.findall('s:g', ns):
    text = {t.get('class'): ''.join(t.itertext()) for t in g.findall('s:text', ns) if t.get('class')}
    paths = {p.get('class'): p.get('d') for p in g.findall('s:path', ns)}
    out['panels'].append({'metric': g.get('data-metric'), 'unit': g.get('data-unit'), 'y': text['y-label'], 'x': text['x-label'], 'history': paths['history'], 'forecast': paths['forecast']})
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', py], { input: svg, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`not well-formed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ReturnType<typeof parse>;
}

test('well-formed SVG: one panel per metric, each with its unit, names escaped', () => {
  const doc = parse(forecastPlotSvg(INPUT));
  assert.is(doc.title, 'model <1> & "two"');
  assert.equal(doc.panels.map((p) => [p.metric, p.unit]), [['cpu_busy_pct', 'percent'], ['mem_used_bytes', 'bytes'], ['net_rx<&>', 'bytes/s']]);
  assert.equal(doc.panels.map((p) => p.y), ['cpu_busy_pct (%)', 'mem_used_bytes (GiB)', 'net_rx<&> (KiB/s)']);
  for (const p of doc.panels) assert.is(p.x, 'time from the last sample (s)');
  // The forecast joins the last sample: horizon + 1 points, one move.
  for (const p of doc.panels) assert.is(p.forecast.match(/[ML]/g)!.join(''), 'MLLL');
});

test('a missing sample and a stretch without samples break the history line', () => {
  const doc = parse(forecastPlotSvg(INPUT));
  assert.is(doc.panels[0]!.history.match(/M/g)!.length, 1);
  assert.is(doc.panels[2]!.history.match(/M/g)!.length, 2, 'the NaN sample');
  assert.is(doc.panels[2]!.history.match(/[ML]/g)!.length, 29);
  const gapAt = [...times.slice(0, 10), ...times.slice(10).map((t) => t + 60_000)];
  const gap = parse(forecastPlotSvg({ ...INPUT, series: [{ ...INPUT.series[0]!, historyAt: gapAt }] }));
  assert.is(gap.panels[0]!.history.match(/M/g)!.length, 2, 'a minute without samples');
  assert.is(gap.panels[0]!.x, 'time from the last sample (s)');
});

test('scales: binary byte units, readable time units, round ticks', () => {
  assert.equal(unitScale('bytes', 500), { label: 'B', factor: 1 });
  assert.equal(unitScale('bytes/s', 5 * 1024 ** 2), { label: 'MiB/s', factor: 1024 ** 2 });
  assert.equal(unitScale('watts', 80), { label: 'W', factor: 1 });
  assert.equal(unitScale('', 3), { label: '', factor: 1 });
  assert.equal(timeScale(30_000), { label: 's', factor: 1000 });
  assert.equal(timeScale(3_600_000), { label: 'min', factor: 60_000 });
  assert.equal(timeScale(86_400_000), { label: 'h', factor: 3_600_000 });
  assert.equal(ticks(0, 100, 4), [0, 25, 50, 75, 100]);
  assert.equal(ticks(-29, 3, 5), [-20, -10, 0]);
  assert.equal(ticks(-12, 0.5, 5), [-10, -7.5, -5, -2.5, 0]);
  assert.equal(ticks(5, 5), [5]);
});

test('one metric is one panel; no metric or a bad interval is a RangeError', () => {
  assert.is(parse(forecastPlotSvg({ ...INPUT, series: [INPUT.series[0]!] })).panels.length, 1);
  assert.throws(() => forecastPlotSvg({ ...INPUT, series: [] }), /no metric to plot/);
  assert.throws(() => forecastPlotSvg({ ...INPUT, intervalMs: 0 }), /intervalMs must be positive/);
});

test.run();
