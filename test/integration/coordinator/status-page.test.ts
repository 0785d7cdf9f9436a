// The status page in a real browser: `icosfl-coordinator serve` with [http] on a free loopback
// port runs one session with two agent daemons; headless chromium then loads the page, and the
// rendered DOM must list every round the control socket lists, the federation and key id, the
// agents, and a drawn uPlot chart of the scored rounds. A screenshot goes to
// test-output/status-page.png for people to look at. `rounds export` is checked against the same
// running coordinator (through its control socket).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONTENT_SECURITY_POLICY } from '../../../coordinator/http/status-page.js';
import type { RoundSummary } from '../../../coordinator/round/state.js';
import { dumpDom, pngSize, requireChromium, screenshot, TEST_OUTPUT } from '../../helpers/chromium.js';
import { FederationCluster } from '../../helpers/federation-cluster.js';
import { exitAfter } from '../../helpers/wait.js';

exitAfter(240_000, 'coordinator/status-page.test');

let cluster: FederationCluster | undefined;
let base = '';
let rounds: RoundSummary[] = [];

test.before(async () => {
  requireChromium();
  cluster = await FederationCluster.create({ agents: 2, broker: 'embedded', rounds: 5, coordinatorLogLevel: 'info', http: { enabled: true, host: '127.0.0.1', port: 0 } });
  const coordinator = await cluster.startCoordinator();
  base = String(coordinator.find('coordinator ready')[0]!.http);
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/, 'the coordinator logs its [http] base URL');
  await cluster.runFirstSession(150_000);
  rounds = await cluster.rounds();
});

test.after(async () => {
  await cluster?.close();
});

test('every file of the page is served under the strict CSP; status.json has the rounds and no host paths', async () => {
  for (const [path, type] of [['/', 'text/html'], ['/page.js', 'text/javascript'], ['/page.css', 'text/css'], ['/uplot.iife.min.js', 'text/javascript'], ['/uplot.min.css', 'text/css'], ['/status.json', 'application/json']]) {
    const res = await fetch(base + path);
    assert.is(res.status, 200, path);
    assert.ok(res.headers.get('content-type')!.startsWith(type!), `${path}: ${res.headers.get('content-type')}`);
    assert.is(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY, path);
    assert.is(res.headers.get('x-content-type-options'), 'nosniff', path);
    await res.arrayBuffer();
  }
  const doc = (await (await fetch(`${base}/status.json`)).json()) as { rounds: RoundSummary[]; total: number; status: Record<string, unknown>; agents: { id: string }[] };
  assert.equal(doc.rounds.map((r) => r.round), rounds.map((r) => r.round));
  assert.is(doc.total, rounds.length);
  assert.equal(doc.agents.map((a) => a.id), ['agent-0', 'agent-1']);
  for (const key of ['pid', 'stateDir', 'socket', 'configFile', 'storage']) assert.not.ok(key in doc.status, `status.json shows ${key}`);
  assert.is((doc.status.federation as { id: string }).id, cluster!.federation);
});

test('chromium renders the rounds, agents, identity and a drawn chart', async () => {
  const html = await dumpDom(`${base}/`);
  assert.match(html, /<body data-state="loaded"/, `the page did not load status.json:\n${html.slice(0, 3000)}`);
  const rendered = [...html.matchAll(/<tr data-round="(\d+)" data-outcome="([a-z-]+)"/g)].map((m) => ({ round: Number(m[1]), outcome: m[2] }));
  // Newest first in the table.
  assert.equal(rendered, rounds.map((r) => ({ round: r.round, outcome: r.outcome })).reverse());
  assert.ok(rounds.some((r) => r.phase === 'ridge') && rounds.some((r) => r.phase === 'fedavg') && rounds.some((r) => r.phase === 'final'), JSON.stringify(rounds));
  for (const r of rounds) {
    const row = new RegExp(`<tr data-round="${r.round}"[^>]*>(.*?)</tr>`).exec(html)![1]!;
    const cells = [...row.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => m[1]);
    assert.is(cells[4], `${r.participants}/${r.expected}`, `round ${r.round}'s agents`);
    assert.is(cells[2], r.phase === 'fedavg' ? `fedavg ${r.step}` : r.phase);
  }
  assert.match(html, new RegExp(`<dd id="federation">${cluster!.federation}</dd>`));
  const status = await cluster!.status();
  assert.match(html, /<dd id="key-id">[0-9a-f]{32}<\/dd>/);
  // The key epoch the rounds ran under: 0 from keys init (no rotation here).
  assert.match(html, /<dd id="key-epoch">0<\/dd>/);
  assert.match(html, new RegExp(`<p class="big" id="rounds-done">${status.roundsDone}</p>`));
  assert.match(html, /<tr data-agent="agent-0" data-online="true"/);
  assert.match(html, /<tr data-agent="agent-1" data-online="true"/);
  // uPlot drew its canvas, with one point per scored (FedAvg) round.
  const scored = rounds.filter((r) => r.score !== null).length;
  assert.ok(scored >= 1, 'no FedAvg round reported a score');
  const chart = /<div id="chart" class="chart" data-points="(\d+)" data-painted="(\d+)">/.exec(html);
  assert.ok(chart, 'chart element not found');
  assert.is(Number(chart![1]), scored);
  assert.ok(Number(chart![2]) > 1000, `the chart's canvas is (nearly) blank: ${chart![2]} pixels drawn`);
  assert.match(html, /<canvas width="\d+" height="\d+"/);
});

test('a screenshot of the page goes to test-output/status-page.png', async () => {
  const file = join(TEST_OUTPUT, 'status-page.png');
  const png = await screenshot(`${base}/`, file, { windowSize: [1280, 1000] });
  assert.equal(pngSize(png), { width: 1280, height: 1000 });
  assert.ok(png.length > 20_000, `the screenshot is suspiciously small (${png.length} bytes)`);
  process.stdout.write(`status page screenshot: ${file}\n`);
});

test('rounds export: CSV to a file and JSON to stdout, every round the control socket lists', async () => {
  const out = join(cluster!.dir, 'rounds.csv');
  const csv = await cluster!.cli('coordinator', ['rounds', 'export', '--config', cluster!.coordinatorConfig, '--format', 'csv', '--out', out]);
  assert.is(csv.code, 0, csv.stderr);
  assert.is(csv.stdout, '');
  assert.match(csv.stderr, `exported ${rounds.length} rounds of federation ${cluster!.federation} to ${out} (csv)`);
  const lines = readFileSync(out, 'utf8').split('\r\n');
  assert.is(lines.pop(), '', 'the file ends with CRLF');
  assert.is(lines[0], 'federation,round,session,phase,step,outcome,reason,expected,participants,acks,clients,total_samples,bytes_in,bytes_out,announced_at,closed_at,seconds,score_vs_persistence');
  assert.equal(lines.slice(1).map((l) => l.split(',').slice(0, 2)), rounds.map((r) => [cluster!.federation, String(r.round)]));
  const json = await cluster!.cli('coordinator', ['rounds', 'export', '--config', cluster!.coordinatorConfig, '--format', 'json']);
  assert.is(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { federation: string; total: number; rounds: RoundSummary[] };
  assert.is(doc.federation, cluster!.federation);
  assert.equal(doc.rounds, rounds);
  assert.is(doc.total, rounds.length);
});

test.run();
