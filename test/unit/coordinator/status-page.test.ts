// The status page's routes on the real HttpServer (loopback, port 0) over a hand-made round state:
// what each route serves and with which headers, what status.json holds and leaves out, that the
// page has no inline code for the CSP to allow, and that missing files fail at once, by name.
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_FEDERATION_MODEL } from '../../../common/protocol/federation-model.js';
import { HttpServer } from '../../../common/http-server.js';
import { CONTENT_SECURITY_POLICY, PAGE_DIR, PAGE_ROUNDS, statusDocument, statusPageFiles, statusPageRoutes, type StatusPageSource } from '../../../coordinator/http/status-page.js';
import { initialState, makeSettings, type CoordinatorState, type RoundSummary } from '../../../coordinator/round/state.js';
import { agentsAnswer, roundsAnswer, statusAnswer, type ServiceFacts } from '../../../coordinator/service-status.js';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

const NOW = 1_700_000_000_000;
const settings = makeSettings({ federation: 'fed-1', codec: 'ckks', keyId: 'k'.repeat(32), model: { ...DEFAULT_FEDERATION_MODEL }, minAgents: 2, maxRoundSamples: 1 << 20 });
const summary = (round: number): RoundSummary => ({ round, session: 1, phase: 'fedavg', step: round, outcome: 'completed', reason: null, expected: 2, participants: 2, acks: 2, clients: 2, totalSamples: 40, bytesIn: 2048, bytesOut: 4096, announcedAt: NOW - 5000, closedAt: NOW - 2500, score: 0.9 });
const state: CoordinatorState = {
  ...initialState(settings, NOW),
  agents: { 'agent-<b>': { firstSeen: NOW - 60_000, lastSeen: NOW - 1000, state: 'online', reason: null, windows: 10, lastRound: 3, installed: 3, rounds: 3, lastError: null } },
  history: Array.from({ length: PAGE_ROUNDS + 5 }, (_, i) => summary(i + 1)),
};
const facts: ServiceFacts = { pid: 4242, startedAt: NOW - 60_000, ready: true, configFile: '/etc/icosfl/coordinator.toml', stateDir: '/var/lib/icosfl-coordinator', socket: '/run/icosfl-coordinator/coordinator.sock', federation: 'fed-1', keyId: 'k'.repeat(32), broker: null, messenger: null, http: null, httpError: null };
const source: StatusPageSource = {
  status: () => ({ ...statusAnswer(state, settings, facts, NOW), storage: { failing: [] } }),
  rounds: (limit) => roundsAnswer(state, limit),
  agents: () => agentsAnswer(state, settings, NOW),
};

const { dir, cleanup } = tempDir('icosfl-status-page-');
let server: HttpServer | undefined;
test.before(async () => {
  server = await HttpServer.start(statusPageRoutes(source), '127.0.0.1', 0, pino({ level: 'silent' }));
});
test.after(async () => {
  await server?.close();
  cleanup();
});

test('status.json: the newest PAGE_ROUNDS rounds, the agents and the status, without host paths or the pid', async () => {
  const res = await fetch(`${server!.base}/status.json`);
  assert.is(res.status, 200);
  assert.is(res.headers.get('cache-control'), 'no-store');
  assert.is(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
  const doc = (await res.json()) as { rounds: RoundSummary[]; total: number; agents: { id: string }[]; status: Record<string, unknown>; generatedAt: number };
  assert.is(doc.rounds.length, PAGE_ROUNDS);
  assert.is(doc.rounds.at(-1)!.round, PAGE_ROUNDS + 5);
  assert.is(doc.total, PAGE_ROUNDS + 5);
  assert.equal(doc.agents.map((a) => a.id), ['agent-<b>']);
  assert.is((doc.status.federation as { id: string }).id, 'fed-1');
  for (const key of ['pid', 'configFile', 'stateDir', 'socket', 'storage']) assert.not.ok(key in doc.status, key);
  assert.not.match(JSON.stringify(doc), /\/var\/lib|\/etc\/icosfl|coordinator\.sock|4242/);
  // The same document as the pure function builds (the route adds nothing of its own).
  const { generatedAt: _at, ...rest } = statusDocument(source, NOW);
  void _at;
  assert.equal(Object.keys(rest).sort(), Object.keys(doc).filter((k) => k !== 'generatedAt').sort());
});

test('every file is served with its type, the CSP, nosniff and no-referrer; uPlot is the installed package', async () => {
  const files = statusPageFiles();
  assert.equal(files.map((f) => f.path), ['/', '/page.js', '/page.css', '/uplot.iife.min.js', '/uplot.min.css']);
  for (const f of files) {
    const res = await fetch(server!.base + f.path);
    assert.is(res.status, 200, f.path);
    assert.is(res.headers.get('content-type'), f.type, f.path);
    assert.is(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY, f.path);
    assert.is(res.headers.get('x-content-type-options'), 'nosniff');
    assert.is(res.headers.get('referrer-policy'), 'no-referrer');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(readFileSync(f.file)), `${f.path} is not ${f.file}`);
  }
  assert.is(files[3]!.file, realpathSync(join(REPO_ROOT, 'node_modules/uplot/dist/uPlot.iife.min.js')));
  assert.ok(CONTENT_SECURITY_POLICY.includes("script-src 'self'") && !CONTENT_SECURITY_POLICY.includes('unsafe'), CONTENT_SECURITY_POLICY);
  assert.is((await fetch(`${server!.base}/nothing`)).status, 404);
});

test('the page has no inline script, style or event handler for the CSP to refuse', () => {
  const html = readFileSync(join(PAGE_DIR, 'index.html'), 'utf8');
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  assert.is(scripts.length, 2);
  for (const [, attrs, body] of scripts) {
    assert.match(attrs!, /\bsrc="[^"/][^"]*"/, 'a script without a relative src');
    assert.is(body!.trim(), '', 'inline script');
  }
  assert.not.match(html, /<style\b|\sstyle=|\son[a-z]+=|javascript:/i);
  // Data reaches the DOM as text only.
  assert.not.match(readFileSync(join(PAGE_DIR, 'page.js'), 'utf8'), /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
});

test('a missing page file fails when the routes are made, naming it', () => {
  const partial = join(dir, 'page');
  mkdirSync(partial);
  writeFileSync(join(partial, 'index.html'), '<!doctype html>');
  assert.throws(() => statusPageRoutes(source, partial), (err: Error) => err.message.includes(join(partial, 'page.js')) && /reinstall icosfl, or set http\.enabled = false/.test(err.message));
});

test.run();
