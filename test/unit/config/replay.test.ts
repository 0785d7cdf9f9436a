import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { IcosflError } from '../../../common/errors.js';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';
import { runCli } from '../../integration/daemon/harness.js';

/** The [sampler] replay_* keys: defaults, path resolution, and the column check (exit 78). */
const { dir, cleanup } = tempDir('icosfl-replay-config-');
test.after(cleanup);

const TRACE = join(REPO_ROOT, 'data', 'gcd', 'vm_4974862840_6.csv');
const sub = join(dir, 'conf');
mkdirSync(sub);
writeFileSync(join(sub, 'trace.csv'), 'timestamp,cpu_busy_pct\n0,1\n');

function configFile(name: string, sampler: string): string {
  const path = join(sub, name);
  writeFileSync(path, `[sampler]\n${sampler}\n`);
  return path;
}

function failure(fn: () => unknown): IcosflError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.is((err as IcosflError).code, 'CONFIG_INVALID');
    return err as IcosflError;
  }
  assert.unreachable('expected CONFIG_INVALID');
  throw new Error('unreachable');
}

test('defaults: no replay, history 0.8, not held', () => {
  const c = loadAgentConfig({ env: {}, defaultPath: join(dir, 'absent.toml') });
  assert.equal([c.sampler.replay_file, c.sampler.replay_history, c.sampler.replay_hold], ['', 0.8, false]);
});

test("a relative replay_file is resolved against the config file's directory; from a flag or variable, against the cwd", () => {
  const path = configFile('rel.toml', 'metrics = ["cpu_busy_pct"]\nreplay_file = "trace.csv"\nreplay_history = 0.5\nreplay_hold = true');
  const c = loadAgentConfig({ configPath: path, env: {} });
  assert.equal([c.sampler.replay_file, c.sampler.replay_history, c.sampler.replay_hold], [join(sub, 'trace.csv'), 0.5, true]);
  const rel = join('data', 'gcd', 'vm_4974862840_6.csv');
  const cwd = process.cwd();
  process.chdir(REPO_ROOT);
  try {
    const flag = loadAgentConfig({ configPath: path, env: {}, sets: [`sampler.replay_file=${rel}`] });
    assert.is(flag.sampler.replay_file, TRACE);
    const env = loadAgentConfig({ env: { ICOSFL_SAMPLER_REPLAY_FILE: rel, ICOSFL_SAMPLER_METRICS: 'cpu_busy_pct', ICOSFL_SAMPLER_REPLAY_HOLD: 'yes' }, defaultPath: join(dir, 'absent.toml') });
    assert.equal([env.sampler.replay_file, env.sampler.replay_hold], [TRACE, true]);
  } finally {
    process.chdir(cwd);
  }
});

test('a metric that is not a column of the file: CONFIG_INVALID naming the key, the file and the column', () => {
  const path = configFile('missing.toml', `metrics = ["cpu_busy_pct", "load1"]\nreplay_file = "${TRACE}"`);
  const e = failure(() => loadAgentConfig({ configPath: path, env: {} }));
  assert.match(e.message, `sampler.metrics (${path}): metric 'load1' is not a column of sampler.replay_file ${TRACE} (its columns: timestamp, cpu_busy_pct, mem_used_pct)`);
  const two = failure(() => loadAgentConfig({ configPath: path, env: {}, sets: ['sampler.metrics=load1,load5'] }));
  assert.match(two.message, "sampler.metrics (flag --set sampler.metrics): metrics 'load1', 'load5' are not columns");
});

test('an absent replay file or an out-of-range history: CONFIG_INVALID naming the key', () => {
  const path = configFile('absent.toml', 'metrics = ["cpu_busy_pct"]\nreplay_file = "nope.csv"');
  const e = failure(() => loadAgentConfig({ configPath: path, env: {} }));
  assert.match(e.message, `sampler.replay_file (${path}): cannot read the replay file ${join(sub, 'nope.csv')} (ENOENT)`);
  const range = failure(() => loadAgentConfig({ configPath: path, env: {}, sets: ['sampler.replay_history=1.5', `sampler.replay_file=${TRACE}`] }));
  assert.match(range.message, 'sampler.replay_history (flag --set sampler.replay_history): must be ≤ 1');
});

test('check-config: a metric missing from the replay file exits 78 naming sampler.metrics, the file and the column', async () => {
  const path = configFile('cli.toml', `metrics = ["cpu_busy_pct", "mem_used_pct", "load1"]\nreplay_file = "${TRACE}"`);
  const r = await runCli(['check-config', '--config', path]);
  assert.is(r.code, 78, r.stderr);
  assert.match(r.stderr, '[CONFIG_INVALID] invalid configuration: sampler.metrics');
  assert.match(r.stderr, `'load1' is not a column of sampler.replay_file ${TRACE}`);
  const ok = await runCli(['check-config', '--config', path, '--set', 'sampler.metrics=cpu_busy_pct,mem_used_pct', '--quiet']);
  assert.is(ok.code, 0, ok.stderr);
});

test.run();
