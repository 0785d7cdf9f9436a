import { join } from 'node:path';
import { test } from 'uvu';
import { DEFAULT_FEDERATION_MODEL } from '../../../common/protocol/federation-model.js';
import * as assert from 'uvu/assert';
import { IcosflError } from '../../../common/errors.js';
import { loadAgentConfig, type LoadOptions } from '../../../agent/config/load.js';
import { DEFAULTS } from '../../../agent/config/schema.js';
import { FIXTURES } from '../../helpers/paths.js';

const fx = (name: string) => join(FIXTURES, 'config', name);
const ABSENT = fx('absent.toml');

/** Loads expecting a CONFIG_* error and returns it. */
function failure(opts: LoadOptions): IcosflError {
  try {
    loadAgentConfig({ env: {}, defaultPath: ABSENT, ...opts });
  } catch (err) {
    assert.instance(err, IcosflError);
    return err as IcosflError;
  }
  assert.unreachable('expected loadAgentConfig to throw');
  throw new Error('unreachable');
}

test('no file at the default path: the defaults, state dir from $STATE_DIRECTORY, runtime dir from $RUNTIME_DIRECTORY', () => {
  const c = loadAgentConfig({ env: { STATE_DIRECTORY: '/srv/state:/srv/other', RUNTIME_DIRECTORY: '/run/icosfl-agent' }, defaultPath: ABSENT });
  assert.is(c.source, null);
  assert.is(c.agent.state_dir, '/srv/state');
  assert.is(c.agent.runtime_dir, '/run/icosfl-agent');
  assert.is(c.agent.log_level, 'info');
  assert.is(c.sampler.interval_ms, DEFAULTS.sampler.interval_ms);
  assert.equal(c.sampler.metrics, DEFAULTS.sampler.metrics);
  assert.is(c.prometheus.enabled, false);
  assert.is(c.trainer.lookback, DEFAULT_FEDERATION_MODEL.lookback, 'the trainer section takes its layout defaults from the federation model');
});

test('without systemd directories: /var/lib/icosfl and <state>/run; LOG_LEVEL is the fallback level', () => {
  const c = loadAgentConfig({ env: { LOG_LEVEL: 'silent' }, defaultPath: ABSENT });
  assert.is(c.agent.state_dir, '/var/lib/icosfl');
  assert.is(c.agent.runtime_dir, '/var/lib/icosfl/run');
  assert.is(c.agent.log_level, 'silent');
});

test('a valid file is read; precedence is file < environment < flags', () => {
  const file = loadAgentConfig({ configPath: fx('valid.toml'), env: {} });
  assert.is(file.source, fx('valid.toml'));
  assert.is(file.sampler.interval_ms, 500);
  assert.equal(file.sampler.metrics, ['cpu_busy_pct', 'mem_used_pct', 'load1']);
  assert.is(file.agent.log_level, 'warn');
  assert.is(file.trainer.enabled, false);

  const env = { ICOSFL_SAMPLER_INTERVAL_MS: '250', ICOSFL_PROMETHEUS_ENABLED: 'false', ICOSFL_SAMPLER_METRICS: 'load1, load5', ICOSFL_CONFIG: fx('valid.toml') };
  const withEnv = loadAgentConfig({ env });
  assert.is(withEnv.sampler.interval_ms, 250);
  assert.is(withEnv.prometheus.enabled, false);
  assert.equal(withEnv.sampler.metrics, ['load1', 'load5']);

  const withFlags = loadAgentConfig({ env, sets: ['sampler.interval_ms=2000'], shortcuts: { 'state-dir': '/tmp/flag-state' } });
  assert.is(withFlags.sampler.interval_ms, 2000);
  assert.is(withFlags.agent.state_dir, '/tmp/flag-state');
  assert.is(withFlags.agent.runtime_dir, '/tmp/flag-state/run');
});

test('variables of other sections and ICOSFL_CONFIG itself are not config keys', () => {
  const c = loadAgentConfig({ env: { ICOSFL_COORDINATOR_PORT: '1', ICOSFL_CONFIG_DIR: 'x' }, defaultPath: ABSENT });
  assert.is(c.sampler.interval_ms, 1000);
});

test('explicit config path that does not exist → CONFIG_NOT_FOUND naming the path', () => {
  const e = failure({ configPath: fx('missing.toml') });
  assert.is(e.code, 'CONFIG_NOT_FOUND');
  assert.match(e.message, fx('missing.toml'));
  assert.is(failure({ env: { ICOSFL_CONFIG: fx('missing.toml') } }).code, 'CONFIG_NOT_FOUND');
});

const FILE_CASES: [string, string, RegExp][] = [
  ['unknown-key.toml', 'sampler.intervl_ms', /unknown key/],
  ['unknown-section.toml', 'sampling', /unknown key/],
  ['wrong-type.toml', 'sampler.interval_ms', /expected number, got string/],
  ['out-of-range.toml', 'sampler.interval_ms', /must be ≥ 50/],
  ['unknown-metric.toml', 'sampler.metrics', /unknown metric 'cpu_bussy_pct'; known: .*cpu_busy_pct/],
  ['non-loopback.toml', 'prometheus.host', /loopback/],
  ['trainer-range.toml', 'trainer.epochs', /must be ≥ 1/],
  ['bad-log-level.toml', 'agent.log_level', /must be one of 'trace'.*got 'loud'/],
];
for (const [file, key, why] of FILE_CASES) {
  test(`${file}: the error names ${key}, the file and why`, () => {
    const e = failure({ configPath: fx(file) });
    assert.is(e.code, 'CONFIG_INVALID');
    assert.ok(e.message.includes(`${key} (${fx(file)})`), e.message);
    assert.match(e.message, why);
  });
}

test('bad TOML: the error names the file, line and column', () => {
  const e = failure({ configPath: fx('bad-toml.toml') });
  assert.is(e.code, 'CONFIG_INVALID');
  assert.ok(e.message.startsWith(`${fx('bad-toml.toml')}:`), e.message);
  assert.match(e.message, /\.toml:\d+:\d+: invalid TOML/);
});

test('a bad environment value names the variable, not the file', () => {
  const e = failure({ configPath: fx('valid.toml'), env: { ICOSFL_SAMPLER_INTERVAL_MS: 'often' } });
  assert.match(e.message, 'sampler.interval_ms (environment variable ICOSFL_SAMPLER_INTERVAL_MS): expected number, got string');
  const unknown = failure({ env: { ICOSFL_SAMPLER_INTERVAL: '5' } });
  assert.match(unknown.message, 'sampler.interval (environment variable ICOSFL_SAMPLER_INTERVAL): unknown key');
  const bool = failure({ env: { ICOSFL_TRAINER_ENABLED: 'maybe' } });
  assert.match(bool.message, 'trainer.enabled (environment variable ICOSFL_TRAINER_ENABLED): expected boolean');
});

test('a bad flag names the flag; a malformed --set is refused', () => {
  assert.match(failure({ sets: ['sampler.ring_capacity=3'] }).message, 'sampler.ring_capacity (flag --set sampler.ring_capacity): must be ≥ 16');
  assert.match(failure({ shortcuts: { 'log-level': 'chatty' } }).message, 'agent.log_level (flag --log-level)');
  assert.match(failure({ sets: ['interval_ms=5'] }).message, /expected section\.key=value/);
  assert.match(failure({ sets: ['sampler.interval_ms'] }).message, /expected section\.key=value/);
});

test('a ring too small for the first training round is refused, naming both settings', () => {
  const e = failure({ sets: ['sampler.ring_capacity=100', 'trainer.min_samples=80', 'trainer.lookback=15', 'trainer.horizon=7'] });
  assert.match(e.message, 'trainer.min_samples (flag --set trainer.min_samples): min_samples + lookback + horizon − 1 = 101 samples, more than sampler.ring_capacity (100) holds: training would never start');
  // One sample fewer fits; with training disabled the sizes do not matter.
  assert.ok(loadAgentConfig({ sets: ['sampler.ring_capacity=100', 'trainer.min_samples=79', 'trainer.lookback=15', 'trainer.horizon=7'] }));
  assert.ok(loadAgentConfig({ sets: ['sampler.ring_capacity=100', 'trainer.min_samples=80', 'trainer.lookback=15', 'trainer.horizon=7', 'trainer.enabled=false'] }));
});

test('several problems are all reported at once', () => {
  const e = failure({ configPath: fx('out-of-range.toml'), sets: ['prometheus.port=70000'] });
  assert.match(e.message, 'sampler.interval_ms');
  assert.match(e.message, 'prometheus.port (flag --set prometheus.port): must be ≤ 65535');
  const problems = (e.details as { problems: unknown[] }).problems;
  assert.is(problems.length, 2);
});

test.run();
