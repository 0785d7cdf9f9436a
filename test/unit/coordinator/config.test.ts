import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IcosflError } from '../../../common/errors.js';
import type { CoordinatorBundle } from '../../../common/crypto/bundle.js';
import { DEFAULT_FEDERATION_MODEL, federationModelSchema } from '../../../common/protocol/federation-model.js';
import { PLAINTEXT_MAX_ROUND_SAMPLES, resolveFederation } from '../../../coordinator/config/federation.js';
import { loadCoordinatorConfig, type LoadOptions } from '../../../coordinator/config/load.js';
import { DEFAULTS, MODEL_KEYS } from '../../../coordinator/config/schema.js';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

const { dir, cleanup } = tempDir('icosfl-coord-config-');
test.after(cleanup);
const ABSENT = join(dir, 'absent.toml');
const EXAMPLE = join(REPO_ROOT, 'coordinator', 'config', 'coordinator.example.toml');

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Loads expecting a CONFIG_* error and returns it. */
function failure(opts: LoadOptions): IcosflError {
  try {
    loadCoordinatorConfig({ env: {}, defaultPath: ABSENT, ...opts });
  } catch (err) {
    assert.instance(err, IcosflError);
    return err as IcosflError;
  }
  assert.unreachable('expected loadCoordinatorConfig to throw');
  throw new Error('unreachable');
}

function bundle(federationId: string): CoordinatorBundle {
  return { params: { federationId, keyId: 'ab'.repeat(16), maxRoundSamples: 1 << 20 } as CoordinatorBundle['params'] };
}

test('no file: every default, directories from systemd, else /var/lib/icosfl-coordinator and <state>/run', () => {
  const c = loadCoordinatorConfig({ env: { STATE_DIRECTORY: '/srv/coord:/srv/x', RUNTIME_DIRECTORY: '/run/icosfl-coordinator' }, defaultPath: ABSENT });
  assert.is(c.source, null);
  assert.is(c.coordinator.state_dir, '/srv/coord');
  assert.is(c.coordinator.runtime_dir, '/run/icosfl-coordinator');
  assert.is(c.coordinator.keys, '/etc/icosfl/coordinator.json');
  assert.is(c.coordinator.codec, 'ckks');
  assert.is(c.coordinator.log_level, 'info');
  assert.equal(c.broker, DEFAULTS.broker);
  assert.equal(c.federation, DEFAULTS.federation);
  assert.equal(c.federationModel, { ...DEFAULT_FEDERATION_MODEL });

  const bare = loadCoordinatorConfig({ env: { LOG_LEVEL: 'warn' }, defaultPath: ABSENT });
  assert.is(bare.coordinator.state_dir, '/var/lib/icosfl-coordinator');
  assert.is(bare.coordinator.runtime_dir, '/var/lib/icosfl-coordinator/run');
  assert.is(bare.coordinator.log_level, 'warn');
});

test('the shipped example is valid and states exactly the defaults', () => {
  const a = loadCoordinatorConfig({ configPath: EXAMPLE, env: {} });
  const b = loadCoordinatorConfig({ env: {}, defaultPath: ABSENT });
  assert.is(a.source, EXAMPLE);
  for (const k of ['coordinator', 'broker', 'federation', 'model', 'federationModel'] as const) assert.equal(a[k], b[k], k);
});

test('precedence: file < ICOSFL_COORD_* environment < --set; $ICOSFL_COORDINATOR_CONFIG names the file', () => {
  const path = file('layers.toml', '[federation]\nmin_agents = 3\nround_timeout_s = 30\n[broker]\nchunk_bytes = 65536\n[model]\nmetrics = ["load1"]\n');
  const fromFile = loadCoordinatorConfig({ configPath: path, env: {} });
  assert.is(fromFile.source, path);
  assert.is(fromFile.federation.min_agents, 3);
  assert.is(fromFile.broker.chunk_bytes, 65536);
  assert.equal(fromFile.federationModel.metrics, ['load1']);

  const env = { ICOSFL_COORDINATOR_CONFIG: path, ICOSFL_COORD_FEDERATION_MIN_AGENTS: '4', ICOSFL_COORD_MODEL_METRICS: 'cpu_busy_pct, load5', ICOSFL_COORD_MODEL_CHANNEL_INDEPENDENT: 'no', ICOSFL_SAMPLER_INTERVAL_MS: 'agent variables are not ours' };
  const withEnv = loadCoordinatorConfig({ env });
  assert.is(withEnv.source, path);
  assert.is(withEnv.federation.min_agents, 4);
  assert.is(withEnv.federation.round_timeout_s, 30, 'the file still sets what the environment does not');
  assert.equal(withEnv.federationModel.metrics, ['cpu_busy_pct', 'load5']);
  assert.is(withEnv.federationModel.channelIndependent, false);

  const withFlags = loadCoordinatorConfig({ env, sets: ['federation.min_agents=5', 'broker.url=mqtts://broker.example:8883'] });
  assert.is(withFlags.federation.min_agents, 5);
  assert.is(withFlags.broker.url, 'mqtts://broker.example:8883');
});

test('relative paths in the file are resolved against its directory; in an override against the cwd', () => {
  const path = file('paths.toml', '[coordinator]\nstate_dir = "st"\nkeys = "k/coordinator.json"\n');
  const c = loadCoordinatorConfig({ configPath: path, env: {} });
  assert.is(c.coordinator.state_dir, join(dir, 'st'));
  assert.is(c.coordinator.runtime_dir, join(dir, 'st', 'run'));
  assert.is(c.coordinator.keys, join(dir, 'k', 'coordinator.json'));
  const o = loadCoordinatorConfig({ configPath: path, env: {}, sets: ['coordinator.keys=other.json'] });
  assert.is(o.coordinator.keys, join(process.cwd(), 'other.json'));
});

test('the [model] section maps every snake_case key to the FederationModel field', () => {
  assert.equal(Object.values(MODEL_KEYS).sort(), Object.keys(federationModelSchema.shape).sort(), 'every model field has a key');
  const path = file(
    'model.toml',
    '[model]\nkind = "linear"\nhidden_units = 8\nchannel_independent = false\nbatch_size = 64\nlearning_rate = 0.01\nlocal_epochs = 3\nfine_tune_epochs = 0\nridge_features = 0\nmix_memory = 0\nvalidation_fraction = 0.3\nmax_windows = 100\nmin_windows = 4\n',
  );
  const m = loadCoordinatorConfig({ configPath: path, env: {} }).federationModel;
  assert.equal(
    [m.kind, m.hiddenUnits, m.channelIndependent, m.batchSize, m.learningRate, m.localEpochs, m.fineTuneEpochs, m.ridgeFeatures, m.mixMemory, m.validationFraction, m.maxWindows, m.minWindows],
    ['linear', 8, false, 64, 0.01, 3, 0, 0, 0, 0.3, 100, 4],
  );
  assert.is(m.lookback, DEFAULT_FEDERATION_MODEL.lookback, 'keys not set keep the default');
});

test('each kind of error names the key, where it came from and what is allowed', () => {
  const unknownKey = file('unknown-key.toml', '[broker]\nchunkbytes = 4096\n');
  assert.match(failure({ configPath: unknownKey }).message, `broker.chunkbytes (${unknownKey}): unknown key`);
  const unknownSection = file('unknown-section.toml', '[brokers]\nurl = "embedded"\n');
  assert.match(failure({ configPath: unknownSection }).message, `brokers (${unknownSection}): unknown section`);
  const range = file('range.toml', '[broker]\nchunk_bytes = 1000000\n[federation]\nmin_agents = 0\n');
  const e = failure({ configPath: range });
  assert.is(e.code, 'CONFIG_INVALID');
  assert.match(e.message, `broker.chunk_bytes (${range}): must be ≤ 262144`);
  assert.match(e.message, `federation.min_agents (${range}): must be ≥ 1`);
  const type = file('type.toml', '[federation]\nsessions = "two"\n');
  assert.match(failure({ configPath: type }).message, `federation.sessions (${type}): expected number, got string`);
  const enumBad = file('enum.toml', '[coordinator]\ncodec = "rot13"\n');
  assert.match(failure({ configPath: enumBad }).message, `coordinator.codec (${enumBad}): must be one of 'ckks', 'plaintext', got 'rot13'`);
  const toml = file('broken.toml', '[broker\nurl = 1\n');
  assert.match(failure({ configPath: toml }).message, new RegExp(`^${toml.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:\\d+: invalid TOML`));

  assert.match(failure({ env: { ICOSFL_COORD_BROKER_EMBEDDED_PORT: '70000' } }).message, 'broker.embedded_port (environment variable ICOSFL_COORD_BROKER_EMBEDDED_PORT): must be ≤ 65535');
  assert.match(failure({ env: { ICOSFL_COORD_BROKERS_URL: 'x' } }).message, 'brokers (environment variable ICOSFL_COORD_BROKERS_URL): unknown section');
  assert.match(failure({ sets: ['model.kind=rnn'] }).message, "model.kind (flag --set model.kind): must be one of 'linear', 'mlp', 'lstm', got 'rnn'");
  assert.match(failure({ sets: ['model.metrics=cpu_busy_pct,cpu_busy_pct'] }).message, 'model.metrics (flag --set model.metrics): must not name a metric twice');
  assert.match(failure({ sets: ['broker.url=http://broker:80'] }).message, "broker.url (flag --set broker.url): scheme 'http:' is not one of mqtt:");
  assert.match(failure({ sets: ['federation.min_agents'] }).message, 'flag --set federation.min_agents: expected section.key=value');
  assert.match(failure({ sets: ['min_agents=2'] }).message, "flag --set min_agents: expected section.key=value, got 'min_agents'");

  const missing = failure({ configPath: join(dir, 'nope.toml') });
  assert.is(missing.code, 'CONFIG_NOT_FOUND');
  assert.match(missing.message, `config file ${join(dir, 'nope.toml')} does not exist`);
  assert.is(failure({ env: { ICOSFL_COORDINATOR_CONFIG: join(dir, 'nope.toml') } }).code, 'CONFIG_NOT_FOUND');
});

test("an empty signing_key takes systemd's credential (LoadCredential=) when there is one; a set one wins", () => {
  const creds = join(dir, 'credentials');
  mkdirSync(creds, { recursive: true });
  const load = (env: NodeJS.ProcessEnv, sets: string[] = []) => loadCoordinatorConfig({ env, defaultPath: ABSENT, sets }).coordinator.signing_key;
  assert.is(load({}), '', 'no credentials directory: no signing');
  assert.is(load({ CREDENTIALS_DIRECTORY: creds }), '', 'a credentials directory without the key: no signing');
  writeFileSync(join(creds, 'coordinator-signing.key'), 'pem');
  assert.is(load({ CREDENTIALS_DIRECTORY: creds }), join(creds, 'coordinator-signing.key'));
  assert.is(load({ CREDENTIALS_DIRECTORY: creds }, ['coordinator.signing_key=/etc/own.key']), '/etc/own.key');
});

test('the embedded broker must stay on loopback', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) {
    assert.is(loadCoordinatorConfig({ env: {}, defaultPath: ABSENT, sets: [`broker.embedded_host=${host}`] }).broker.embedded_host, host);
  }
  const path = file('public.toml', '[broker]\nembedded_host = "0.0.0.0"\n');
  assert.match(failure({ configPath: path }).message, `broker.embedded_host (${path}): must be a loopback address`);
});

test('plaintext needs federation.id; ckks needs coordinator.keys', () => {
  assert.match(failure({ sets: ['coordinator.codec=plaintext'] }).message, "federation.id (defaults): must be set when coordinator.codec is 'plaintext'");
  const plain = loadCoordinatorConfig({ env: {}, defaultPath: ABSENT, sets: ['coordinator.codec=plaintext', 'federation.id=bench'] });
  assert.equal(resolveFederation(plain, null), { id: 'bench', keyId: '', maxRoundSamples: PLAINTEXT_MAX_ROUND_SAMPLES });
  assert.match(failure({ sets: ['coordinator.keys='] }).message, 'coordinator.keys (flag --set coordinator.keys): must name the coordinator.json');
});

test('federation.id: empty takes the key bundle\'s; a different one is CONFIG_INVALID naming both', () => {
  const c = loadCoordinatorConfig({ env: {}, defaultPath: ABSENT });
  assert.equal(resolveFederation(c, bundle('fed-a')), { id: 'fed-a', keyId: 'ab'.repeat(16), maxRoundSamples: 1 << 20 });
  const same = loadCoordinatorConfig({ env: {}, defaultPath: ABSENT, sets: ['federation.id=fed-a'] });
  assert.is(resolveFederation(same, bundle('fed-a')).id, 'fed-a');
  const path = file('other-fed.toml', '[federation]\nid = "fed-b"\n');
  const other = loadCoordinatorConfig({ configPath: path, env: {} });
  try {
    resolveFederation(other, bundle('fed-a'));
    assert.unreachable('a mismatch must throw');
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.is((err as IcosflError).code, 'CONFIG_INVALID');
    assert.match((err as Error).message, `federation.id (${path}): 'fed-b' is not the federation of coordinator.keys /etc/icosfl/coordinator.json ('fed-a')`);
  }
});

test.run();
