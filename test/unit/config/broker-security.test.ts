import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { agentConfigSchema } from '../../../agent/config/schema.js';
import { isInsecureRemote, isLoopbackHost } from '../../../common/config/broker-security.js';
import { unwrapSchema } from '../../../common/config/overrides.js';
import { IcosflError } from '../../../common/errors.js';
import { loadCoordinatorConfig } from '../../../coordinator/config/load.js';
import { coordinatorConfigSchema } from '../../../coordinator/config/schema.js';
import { tempDir } from '../../helpers/paths.js';

// Secure defaults in both configs: a plain broker on another host is refused (exit 78, naming
// the key and the fix) unless allow_insecure; TLS keys need a TLS URL; paths resolve beside the file.
const { dir, cleanup } = tempDir('icosfl-broker-security-');
test.after(cleanup);
const ABSENT = join(dir, 'absent.toml');

function file(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, text);
  return path;
}

function refused(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.is((err as IcosflError).code, 'CONFIG_INVALID');
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
}

const agent = (env: Record<string, string>, configPath?: string) => loadAgentConfig({ env: { ICOSFL_FEDERATION_ENABLED: 'true', ...env }, defaultPath: ABSENT, ...(configPath ? { configPath } : {}) });
const coordinator = (sets: string[], configPath?: string) => loadCoordinatorConfig({ env: {}, defaultPath: ABSENT, sets: ['coordinator.codec=plaintext', 'federation.id=f', ...sets], ...(configPath ? { configPath } : {}) });

test('loopback is 127.0.0.0/8, ::1 and localhost; only a plain URL to another host is insecure', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['10.0.0.1', '128.0.0.1', 'broker.example', '0.0.0.0', '::', 'localhost.example']) assert.not.ok(isLoopbackHost(h), h);
  assert.ok(isInsecureRemote('mqtt://10.0.0.5:1883'));
  assert.ok(isInsecureRemote('ws://broker.example/mqtt'));
  assert.not.ok(isInsecureRemote('mqtts://10.0.0.5:8883'));
  assert.not.ok(isInsecureRemote('mqtt://127.0.0.1:1883'));
});

test('agent: the zero-setup default (mqtt://127.0.0.1:1883) starts', () => {
  assert.is(agent({}).federation.broker, 'mqtt://127.0.0.1:1883');
});

test('agent: mqtt:// to another host is refused, naming the key, where it came from and the fix', () => {
  const m = refused(() => agent({ ICOSFL_FEDERATION_BROKER: 'mqtt://10.0.0.5:1883' }));
  assert.match(m, "federation.broker (environment variable ICOSFL_FEDERATION_BROKER): 'mqtt://10.0.0.5:1883' is not on this host and the connection would be unencrypted");
  assert.match(m, 'use mqtts:// with federation.ca, federation.cert and federation.key (scripts/gen-certs.sh, docs/tls.md), or set federation.allow_insecure = true');
  const fromFile = file('remote.toml', '[federation]\nenabled = true\nbroker = "mqtt://broker.example:1883"\n');
  assert.match(refused(() => agent({}, fromFile)), `federation.broker (${fromFile}): 'mqtt://broker.example:1883' is not on this host`);
});

test('agent: allow_insecure = true lets it start; mqtts:// needs no override', () => {
  assert.ok(agent({ ICOSFL_FEDERATION_BROKER: 'mqtt://10.0.0.5:1883', ICOSFL_FEDERATION_ALLOW_INSECURE: 'true' }).federation.allow_insecure);
  assert.is(agent({ ICOSFL_FEDERATION_BROKER: 'mqtts://10.0.0.5:8883' }).federation.broker, 'mqtts://10.0.0.5:8883');
});

test('agent: TLS files with an mqtt:// URL are refused (they would be ignored)', () => {
  const m = refused(() => agent({ ICOSFL_FEDERATION_CA: '/etc/icosfl/ca.crt' }));
  assert.match(m, 'federation.broker (defaults): is mqtt:// but federation.ca is set: TLS needs an mqtts:// URL');
});

test('agent: TLS and password paths are relative to the config file; overrides to the cwd', () => {
  const sub = join(dir, 'etc');
  mkdirSync(sub, { recursive: true });
  const path = join(sub, 'agent.toml');
  writeFileSync(path, '[federation]\nbroker = "mqtts://broker.example:8883"\nca = "tls/ca.crt"\ncert = "tls/a.crt"\nkey = "/abs/a.key"\nusername = "a"\npassword_file = "pw"\n');
  const f = agent({}, path).federation;
  assert.is(f.ca, join(sub, 'tls', 'ca.crt'));
  assert.is(f.cert, join(sub, 'tls', 'a.crt'));
  assert.is(f.key, '/abs/a.key');
  assert.is(f.password_file, join(sub, 'pw'));
  assert.is(agent({ ICOSFL_FEDERATION_CA: 'rel/ca.crt' }, path).federation.ca, join(process.cwd(), 'rel', 'ca.crt'));
});

test('coordinator: an external mqtt:// broker on another host is refused unless broker.allow_insecure', () => {
  const m = refused(() => coordinator(['broker.url=mqtt://10.0.0.5:1883']));
  assert.match(m, "broker.url (flag --set broker.url): 'mqtt://10.0.0.5:1883' is not on this host");
  assert.match(m, 'or set broker.allow_insecure = true');
  assert.ok(coordinator(['broker.url=mqtt://10.0.0.5:1883', 'broker.allow_insecure=true']).broker.allow_insecure);
  const fromEnv = loadCoordinatorConfig({ env: { ICOSFL_COORD_BROKER_URL: 'mqtt://10.0.0.5:1883', ICOSFL_COORD_BROKER_ALLOW_INSECURE: 'true', ICOSFL_COORD_BROKER_PASSWORD_FILE: 'pw' }, defaultPath: ABSENT, sets: ['coordinator.codec=plaintext', 'federation.id=f'] });
  assert.ok(fromEnv.broker.allow_insecure, 'ICOSFL_COORD_BROKER_ALLOW_INSECURE');
  assert.is(fromEnv.broker.password_file, join(process.cwd(), 'pw'));
  assert.is(coordinator(['broker.url=mqtt://127.0.0.1:1883']).broker.url, 'mqtt://127.0.0.1:1883');
  assert.is(coordinator(['broker.url=mqtts://broker.example:8883']).broker.url, 'mqtts://broker.example:8883');
});

test('coordinator: the embedded broker listens beyond loopback only with TLS, and TLS needs the CA', () => {
  assert.match(refused(() => coordinator(['broker.embedded_host=0.0.0.0'])), "broker.embedded_host (flag --set broker.embedded_host): must be a loopback address (127.x.x.x, ::1, localhost) unless the embedded broker speaks TLS");
  const tls = coordinator(['broker.embedded_host=0.0.0.0', 'broker.ca=ca.crt', 'broker.cert=broker.crt', 'broker.key=broker.key']);
  assert.is(tls.broker.embedded_host, '0.0.0.0');
  assert.is(tls.broker.ca, join(process.cwd(), 'ca.crt'));
  assert.match(refused(() => coordinator(['broker.cert=broker.crt', 'broker.key=broker.key'])), 'broker.ca (defaults): must name the federation CA (ca.crt) when broker.cert makes the embedded broker speak TLS');
  assert.match(refused(() => coordinator(['broker.ca=ca.crt'])), "broker.cert (defaults): must name the embedded broker's certificate");
  assert.match(refused(() => coordinator(['broker.username=x'])), 'broker.username (flag --set broker.username): is for an external broker');
  assert.match(refused(() => coordinator(['broker.url=mqtt://127.0.0.1:1883', 'broker.cert=c.crt', 'broker.key=c.key'])), 'is mqtt:// but broker.cert is set');
});

test('every new key is described (the generated config reference reads .describe())', () => {
  const agentFederation = unwrapSchema(agentConfigSchema.shape.federation) as unknown as { shape: Record<string, { description?: string }> };
  const coordinatorBroker = unwrapSchema(coordinatorConfigSchema.shape.broker) as unknown as { shape: Record<string, { description?: string }> };
  for (const key of ['ca', 'cert', 'key', 'username', 'password_file', 'allow_insecure']) {
    assert.ok((agentFederation.shape[key]?.description ?? '').length > 20, `federation.${key}`);
    assert.ok((coordinatorBroker.shape[key]?.description ?? '').length > 20, `broker.${key}`);
  }
});

test.run();
