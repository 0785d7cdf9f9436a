import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alertRules, dashboardTargets, expandGrafanaVariables, metricNames } from '../../helpers/promql.js';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

// The shipped alert rules and Grafana dashboard (docs/MONITORING.md): promtool (Debian's
// prometheus package, installed by .ci/run) checks the rules and runs their unit tests; a test
// cannot pass without it. Which metrics they name exist: test/integration/monitoring/prometheus.test.ts.

const RULES = join(REPO_ROOT, 'deploy', 'prometheus', 'icosfl-rules.yml');
const RULE_TESTS = join(REPO_ROOT, 'deploy', 'prometheus', 'icosfl-rules.test.yml');
const DASHBOARD = join(REPO_ROOT, 'deploy', 'grafana', 'icosfl-dashboard.json');
const tmp = tempDir('icosfl-monitoring-');
test.after(() => tmp.cleanup());

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool ${args[0]} ${args[1]}: ${r.error.message} (install Debian's prometheus package, as .ci/run does)`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('promtool check rules: every rule parses', () => {
  const r = promtool('check', 'rules', RULES);
  assert.is(r.status, 0, r.out);
  assert.match(r.out, `SUCCESS: ${alertRules(RULES).length} rules found`);
});

test('promtool test rules: each alert fires where it should and nowhere else', () => {
  const r = promtool('test', 'rules', RULE_TESTS);
  assert.is(r.status, 0, r.out);
  assert.match(r.out, 'SUCCESS');
});

test('the rule tests bite: a changed threshold fails them', () => {
  const rules = readFileSync(RULES, 'utf8');
  const changed = rules.replace('steps_ahead=~"[1-5]"}) > 90', 'steps_ahead=~"[1-5]"}) > 99');
  assert.not.equal(changed, rules, 'the CPU forecast rule is where this test expects it');
  writeFileSync(join(tmp.dir, 'icosfl-rules.yml'), changed);
  copyFileSync(RULE_TESTS, join(tmp.dir, 'icosfl-rules.test.yml'));
  const r = promtool('test', 'rules', join(tmp.dir, 'icosfl-rules.test.yml'));
  assert.is.not(r.status, 0, r.out);
  assert.match(r.out, /FAILED[\s\S]*IcosflCpuForecastHigh/);
});

test('every alert has a test case in which it fires', () => {
  const tests = readFileSync(RULE_TESTS, 'utf8');
  const rules = alertRules(RULES);
  assert.ok(rules.length >= 15, `${rules.length} alert rules`);
  for (const { alert } of rules) {
    const firing = new RegExp(`alertname: ${alert}\\n\\s*exp_alerts:\\n\\s*- exp_labels:`);
    assert.match(tests, firing, `no test case in which ${alert} fires`);
  }
});

test('the dashboard: valid JSON, a Prometheus input, the agent and federation panels, every target valid PromQL', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { __inputs: { name: string; pluginId: string }[]; uid: string; panels: { title?: string }[]; templating: { list: { name: string; definition: string }[] } };
  assert.equal(dashboard.__inputs.map((i) => [i.name, i.pluginId]), [['DS_PROMETHEUS', 'prometheus']]);
  assert.is(dashboard.uid, 'icosfl-federation');
  const targets = dashboardTargets(dashboard);
  const titles = new Set(targets.map((t) => t.panel));
  for (const want of ['Actual vs forecast: $metric', 'Forecast by step ahead: $metric', 'Ring fill', 'Sampler cadence jitter', 'Rounds', 'Participants', 'Bytes', 'Validation error relative to persistence', 'Stage durations']) {
    assert.ok(titles.has(want), `panel '${want}' with targets; panels: ${[...titles].join(', ')}`);
  }
  // promtool parses each target (variables expanded) as a recording rule's expression.
  const exprs = targets.map((t) => expandGrafanaVariables(t.expr, { instance: 'edge-1', metric: 'cpu_busy_pct' }));
  const rules = ['groups:', '  - name: dashboard', '    rules:', ...exprs.flatMap((e, i) => [`      - record: icosfl_dashboard:target_${i}`, `        expr: ${JSON.stringify(e)}`])].join('\n');
  writeFileSync(join(tmp.dir, 'dashboard-rules.yml'), rules + '\n');
  const r = promtool('check', 'rules', join(tmp.dir, 'dashboard-rules.yml'));
  assert.is(r.status, 0, r.out);
  assert.match(r.out, `SUCCESS: ${exprs.length} rules found`);
  for (const [i, e] of exprs.entries()) {
    if (e === 'vector(1)') continue;
    assert.ok(metricNames(e).length > 0 && metricNames(e).every((n) => n.startsWith('icosfl_')), `${targets[i]!.panel}: ${e} → ${metricNames(e).join(', ')}`);
  }
  assert.equal(dashboard.templating.list.map((v) => v.name), ['instance', 'metric']);
});

test('metricNames: selectors, not functions, labels, keywords, durations or strings', () => {
  assert.equal(metricNames('max by (job, instance) (icosfl_forecast{metric="cpu_busy_pct", steps_ahead=~"[1-5]"}) > 90'), ['icosfl_forecast']);
  assert.equal(metricNames('icosfl_privacy_epsilon / icosfl_privacy_epsilon_budget > 0.9'), ['icosfl_privacy_epsilon', 'icosfl_privacy_epsilon_budget']);
  assert.equal(metricNames('icosfl_coordinator_agents{state="eligible"} < ignoring(state) icosfl_coordinator_quorum'), ['icosfl_coordinator_agents', 'icosfl_coordinator_quorum']);
  assert.equal(metricNames('time() - a_seconds offset 5m > 1e-3 or absent(up{job="x"}) unless on(instance) group_left(kind) b'), ['a_seconds', 'b', 'up']);
  assert.equal(metricNames('histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m:1m])))'), ['x_bucket']);
  assert.equal(metricNames('{__name__="x"}'), []);
  assert.throws(() => metricNames('rate(x[$__rate_interval])'), /Grafana variables/);
  assert.is(expandGrafanaVariables('rate(x{m="$metric"}[$__rate_interval]) ${step}', { metric: 'cpu', step: '3' }), 'rate(x{m="cpu"}[5m]) 3');
});

test.run();
