// A real Prometheus (Debian's /usr/bin/prometheus, installed by .ci/run) on loopback, with the
// shipped alert rules loaded, scrapes a coordinator (`serve`, [http] on port 0) and two agent
// daemons ([prometheus] on port 0, differential privacy on) through one federation session, and
// a third agent that samples this machine (its collectors' metrics).
// Every metric the rules and the Grafana dashboard name must be among the series it scraped, so
// a renamed metric fails here; every rule must evaluate without error and every dashboard query
// must be accepted by Prometheus' own parser.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanEnv, FederationCluster, ManagedProcess } from '../../helpers/federation-cluster.js';
import { freePort } from '../../helpers/mosquitto.js';
import { DIST, REPO_ROOT } from '../../helpers/paths.js';
import { alertRules, dashboardTargets, expandGrafanaVariables, metricNames } from '../../helpers/promql.js';
import { exitAfter, waitFor, within } from '../../helpers/wait.js';

exitAfter(240_000, 'monitoring/prometheus.test');

const RULES = join(REPO_ROOT, 'deploy', 'prometheus', 'icosfl-rules.yml');
const DASHBOARD = join(REPO_ROOT, 'deploy', 'grafana', 'icosfl-dashboard.json');
const PROMETHEUS = '/usr/bin/prometheus';
const AGENT_CLI = join(DIST, 'agent', 'cli.js');

interface ApiAnswer<T> {
  status: string;
  data: T;
  error?: string;
}

async function api<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== 'success') throw new Error(`${path}: ${res.status} ${body.error ?? ''}`);
  return body.data;
}

/** The metrics the shipped rules and dashboard name; Grafana's variables get a value each. */
function requiredMetrics(): Map<string, string> {
  const where = new Map<string, string>();
  for (const r of alertRules(RULES)) for (const n of metricNames(r.expr)) where.set(n, `alert ${r.alert}`);
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Parameters<typeof dashboardTargets>[0] & { templating: { list: { definition: string }[] } };
  for (const t of dashboardTargets(dashboard)) for (const n of metricNames(expandGrafanaVariables(t.expr, { instance: 'x', metric: 'cpu_busy_pct' }))) where.set(n, `panel ${t.panel}`);
  for (const v of dashboard.templating.list) {
    const m = /^label_values\((\w+),/.exec(v.definition);
    if (m) where.set(m[1]!, `variable ${v.definition}`);
  }
  return where;
}

test('Prometheus scrapes a running federation: every metric the rules and the dashboard name exists', async () => {
  assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS} is missing: install Debian's prometheus package, as .ci/run does`);
  const required = requiredMetrics();
  assert.ok(required.size >= 30, `${required.size} metrics named`);
  const cluster = await FederationCluster.create({
    agents: 2,
    broker: 'embedded',
    rounds: 1,
    model: { local_epochs: 1, fine_tune_epochs: 1, ridge_features: 16 },
    coordinatorLogLevel: 'info',
    coordinatorSections: { http: { enabled: true, port: 0 } },
    agentSections: { prometheus: { enabled: true, port: 0 }, privacy: { enabled: true, epsilon_budget: 100 } },
  });
  let prometheus: ManagedProcess | undefined;
  let live: ManagedProcess | undefined;
  try {
    const coordinator = await cluster.startCoordinator();
    await cluster.startAgents();
    // The federation's agents replay traces, which have no collectors: a third agent samples this machine.
    const liveDir = join(cluster.dir, 'live-agent');
    mkdirSync(liveDir);
    writeFileSync(
      join(liveDir, 'agent.toml'),
      [
        `[agent]\nstate_dir = ${JSON.stringify(join(liveDir, 'state'))}\nruntime_dir = ${JSON.stringify(join(liveDir, 'run'))}\nlog_level = "info"`,
        '[sampler]\ninterval_ms = 200\nmetrics = ["cpu_busy_pct", "mem_used_pct"]\nring_capacity = 1024',
        '[trainer]\nenabled = false',
        '[prometheus]\nenabled = true\nport = 0',
        '',
      ].join('\n\n'),
    );
    live = new ManagedProcess('live-agent', spawn(process.execPath, [AGENT_CLI, 'run', '--config', join(liveDir, 'agent.toml')], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
    const coordinatorUrl = new URL(String((await coordinator.waitForLog('http endpoint listening')).url));
    const agentUrls = await Promise.all(cluster.agents.map(async (_a, i) => new URL(String((await cluster.agent(i).waitForLog('metrics endpoint listening')).url))));
    agentUrls.push(new URL(String((await live.waitForLog('metrics endpoint listening')).url)));

    const port = await freePort();
    const config = join(cluster.dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(RULES)}]`,
        'scrape_configs:',
        `  - { job_name: icosfl-coordinator, static_configs: [{ targets: [${JSON.stringify(coordinatorUrl.host)}] }] }`,
        `  - { job_name: icosfl-agent, static_configs: [{ targets: [${agentUrls.map((u) => JSON.stringify(u.host)).join(', ')}] }] }`,
        '',
      ].join('\n'),
    );
    const proc = spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${join(cluster.dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--log.format=json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus = new ManagedProcess('prometheus', proc);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (!prometheus!.running) throw new Error(`prometheus exited: ${prometheus!.stderr.slice(-2000)}`);
        return (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.status === 200;
      },
      30_000,
      'prometheus to be ready',
      200,
    );

    // One whole session, and each agent forecasting with the federated model (icosfl_forecast).
    await cluster.waitForRound((r) => r.phase === 'final' && r.outcome === 'completed', 150_000, 'the final round to complete');
    let names = new Set<string>();
    const missing = () => [...required.keys()].filter((n) => !names.has(n));
    try {
      await waitFor(
        async () => {
          names = new Set(await api<string[]>(base, '/api/v1/label/__name__/values'));
          return missing().length === 0;
        },
        45_000,
        'every metric named in the rules and the dashboard',
        500,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; missing: ${missing().map((n) => `${n} (${required.get(n)})`).join(', ')}`);
    }

    // Every target up at its latest scrape: one whose first scrape is still to come reads 'unknown',
    // and on a loaded machine one scrape may overrun the 1 s interval ('down', deadline exceeded)
    // and the next succeed. A target that stays down fails below with its last error.
    let targets: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] } = { activeTargets: [] };
    await waitFor(
      async () => {
        targets = await api<typeof targets>(base, '/api/v1/targets');
        return targets.activeTargets.length === 4 && targets.activeTargets.every((t) => t.health === 'up');
      },
      30_000,
      'every target up',
      200,
    ).catch(() => undefined);
    assert.equal(targets.activeTargets.map((t) => [t.labels.job, t.health, t.lastError]).sort(), [['icosfl-agent', 'up', ''], ['icosfl-agent', 'up', ''], ['icosfl-agent', 'up', ''], ['icosfl-coordinator', 'up', '']], `targets: ${JSON.stringify(targets.activeTargets.map((t) => [t.labels.job, t.health, t.lastError]))}`);
    // The rules as Prometheus loaded them: all of them, each evaluated without error.
    const shipped = alertRules(RULES);
    let loaded: { name: string; health: string; lastError?: string; query: string }[] = [];
    await waitFor(
      async () => {
        const groups = await api<{ groups: { rules: { name: string; health: string; lastError?: string; query: string }[] }[] }>(base, '/api/v1/rules');
        loaded = groups.groups.flatMap((g) => g.rules);
        return loaded.length === shipped.length && loaded.every((r) => r.health !== 'unknown');
      },
      15_000,
      'every rule to be evaluated once',
      250,
    );
    assert.equal(loaded.map((r) => r.name).sort(), shipped.map((r) => r.alert).sort());
    for (const r of loaded) assert.is(r.health, 'ok', `${r.name}: ${r.lastError}`);
    // The names read from Prometheus' own rendering of each query are the ones read from the file.
    for (const r of loaded) assert.equal(metricNames(r.query), metricNames(shipped.find((s) => s.alert === r.name)!.expr), r.name);
    // Every dashboard query, with the variables set as Grafana would: accepted, and the forecast panel has data.
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Parameters<typeof dashboardTargets>[0];
    const instance = agentUrls[0]!.host;
    for (const t of dashboardTargets(dashboard)) {
      const expr = expandGrafanaVariables(t.expr, { instance, metric: 'cpu_busy_pct' });
      const data = await api<{ result: unknown[] }>(base, `/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (t.panel.startsWith('Actual vs forecast')) assert.ok(data.result.length > 0, `${t.panel}: ${expr} returned nothing`);
    }
    // The coordinator's served exposition passes promtool's lint (prom-client's own nodejs_* names
    // aside). The agents' is not linted: its icosfl_sampler_jitter_seconds gauge has a quantile label.
    for (const url of [new URL('/metrics', coordinatorUrl)]) {
      const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: text.split('\n').filter((l) => !/^(# \w+ )?\w*nodejs_/.test(l)).join('\n'), encoding: 'utf8', timeout: 30_000 });
      assert.is(lint.status, 0, `promtool check metrics ${url}: ${lint.error?.message ?? ''}${lint.stdout}${lint.stderr}`);
    }
    const coordinatorRounds = await api<{ result: { value: [number, string] }[] }>(base, `/api/v1/query?query=${encodeURIComponent('sum(icosfl_coordinator_rounds_total{outcome="completed"})')}`);
    assert.ok(Number(coordinatorRounds.result[0]?.value[1]) >= 3, `completed rounds scraped: ${JSON.stringify(coordinatorRounds.result)}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${cluster.dump()}\n--- live agent\n${live?.tail() ?? ''}\n--- prometheus\n${prometheus?.stderr.slice(-3000) ?? ''}`);
  } finally {
    if (prometheus) await within(prometheus.stop(), 15_000, 'prometheus to stop');
    if (live) await live.stop();
    await cluster.close();
  }
});

test.run();
