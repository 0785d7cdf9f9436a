// `icosfl-agent predict --plot FILE.svg` against a real agent daemon that took part in a
// federation session: the SVG is parsed by a real XML parser (Python's ElementTree), has one
// panel per forecast metric with its unit on the y axis and the time unit on the x axis, and
// chromium renders it (a PNG to test-output/forecast-plot.png). Bad paths are refused before
// anything is asked, with exit 73 naming --plot.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import { dumpDom, pngSize, requireChromium, screenshot, TEST_OUTPUT } from '../../helpers/chromium.js';
import { FederationCluster, METRICS } from '../../helpers/federation-cluster.js';
import { exitAfter } from '../../helpers/wait.js';

exitAfter(200_000, 'daemon/predict-plot.test');

let cluster: FederationCluster | undefined;

test.before(async () => {
  requireChromium();
  cluster = await FederationCluster.create({ agents: 2, broker: 'embedded', rounds: 1, coordinatorLogLevel: 'info' });
  await cluster.startCoordinator();
  await cluster.runFirstSession(150_000);
});

test.after(async () => {
  await cluster?.close();
});

interface ParsedSvg {
  root: string;
  width: number;
  height: number;
  panels: { metric: string; unit: string; y: string; x: string; history: number; forecast: number }[];
}

/** Parses the SVG strictly (ElementTree refuses anything that is not well-formed XML) and lists its panels. */
function parseSvg(file: string): ParsedSvg {
  const py = `
import json, re, sys, xml.etree.ElementTree as ET
ns = {'s': 'http://www.w3.org/2000/svg'}
root = ET.parse(sys.argv[1]).getroot()
def segments(d): return len(re.findall(r'[ML]', d or ''))
panels = []
for g in root.findall('s:g', ns):
    if g.get('class') != 'panel': continue
    text = {t.get('class'): ''.join(t.itertext()) for t in g.findall('s:text', ns) if t.get('class')}
    paths = {p.get('class'): p.get('d') for p in g.findall('s:path', ns)}
    panels.append({'metric': g.get('data-metric'), 'unit': g.get('data-unit'), 'y': text.get('y-label'), 'x': text.get('x-label'), 'history': segments(paths.get('history')), 'forecast': segments(paths.get('forecast'))})
print(json.dumps({'root': root.tag, 'width': float(root.get('width')), 'height': float(root.get('height')), 'panels': panels}))
`;
  const r = spawnSync('python3', ['-c', py, file], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`the SVG is not well-formed XML: ${r.stderr}`);
  return JSON.parse(r.stdout) as ParsedSvg;
}

test('predict --plot: one panel per metric, history and forecast drawn, units on the axes; chromium renders it', async () => {
  const file = join(cluster!.dir, 'forecast.svg');
  const r = await cluster!.cli('agent', ['predict', '--config', cluster!.agents[0]!.config, '--plot', file, '--json']);
  assert.is(r.code, 0, r.stderr);
  const forecast = JSON.parse(r.stdout) as { horizon: number; forecast: Record<string, number[]> };
  assert.match(r.stderr, `plot: ${file} (${METRICS.length} metrics`);
  const svg = parseSvg(file);
  assert.is(svg.root, '{http://www.w3.org/2000/svg}svg');
  assert.equal(svg.panels.map((p) => p.metric), Object.keys(forecast.forecast));
  assert.equal(svg.panels.map((p) => p.metric).sort(), [...METRICS].sort());
  for (const p of svg.panels) {
    assert.is(p.unit, 'percent', p.metric);
    assert.is(p.y, `${p.metric} (%)`);
    assert.match(p.x!, /^time from the last sample \((s|min|h)\)$/);
    assert.is(p.history, Math.max(24, 6 * forecast.horizon), `${p.metric}: history points`);
    // The forecast line starts at the last sample: horizon + 1 points.
    assert.is(p.forecast, forecast.horizon + 1, p.metric);
  }
  requireChromium();
  const dom = await dumpDom(`file://${file}`, { budgetMs: 1000 });
  assert.not.match(dom, /parsererror|This page contains the following errors/);
  const png = await screenshot(`file://${file}`, join(TEST_OUTPUT, 'forecast-plot.png'), { windowSize: [Math.ceil(svg.width), Math.ceil(svg.height)], budgetMs: 1000 });
  assert.is(pngSize(png).width, Math.ceil(svg.width));
  process.stdout.write(`forecast plot: ${file} rendered to ${join(TEST_OUTPUT, 'forecast-plot.png')}\n`);
});

test('predict --plot: a directory, a missing directory or a file as parent exit 73 naming --plot, before asking anything', async () => {
  const dir = join(cluster!.dir, 'plots');
  mkdirSync(dir);
  const plain = join(cluster!.dir, 'plain');
  writeFileSync(plain, 'x');
  const cases: [string, RegExp][] = [
    [dir, /\[OUTPUT_UNWRITABLE\] --plot: cannot create .*plots: it is a directory \(EISDIR\); name a file, not a directory/],
    [join(cluster!.dir, 'nowhere', 'f.svg'), /\[OUTPUT_UNWRITABLE\] --plot: cannot create .*nowhere\/f\.svg: no such file or directory \(ENOENT\); create its parent directory first/],
    [join(plain, 'f.svg'), /\[OUTPUT_UNWRITABLE\] --plot: cannot create .*plain\/f\.svg: a component of the path is not a directory \(ENOTDIR\)/],
  ];
  for (const [path, message] of cases) {
    // A socket that names nothing: only the path check can answer before it.
    const r = await cluster!.cli('agent', ['predict', '--socket', join(cluster!.dir, 'none.sock'), '--plot', path]);
    assert.is(r.code, exitCode('CANT_CREATE'), `${path}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stdout, '', 'a refused --plot printed a forecast');
  }
  assert.not.ok(existsSync(join(cluster!.dir, 'nowhere')));
});

test.run();
