// Secure defaults through the real entry points: `icosfl-agent run` and `icosfl-coordinator serve`
// refuse a plain mqtt:// broker on another host (exit 78, naming the key and the fix), and with
// allow_insecure = true start and log the warning. 192.0.2.10 (TEST-NET-1) is never reached: the
// refusal comes before any connection, the warning before the first attempt.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadServerMaterial } from '../../../common/transport/tls-credentials.js';
import { startEmbeddedBroker } from '../../../coordinator/broker/embedded-broker.js';
import { makeCerts, shippedMosquittoConfig } from '../../helpers/certs.js';
import { ManagedProcess } from '../../helpers/federation-cluster.js';
import { startMosquitto } from '../../helpers/mosquitto.js';
import { DIST, tempDir } from '../../helpers/paths.js';
import { exitAfter, waitFor, within } from '../../helpers/wait.js';

exitAfter(150_000, 'secure-defaults.test');
const { dir, cleanup } = tempDir('icosfl-secure-defaults-');
test.after(cleanup);
const REMOTE = 'mqtt://192.0.2.10:1883';
const toml = (sections: Record<string, Record<string, unknown>>): string =>
  Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}\n`)
    .join('\n');
const env = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && !['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'STATE_DIRECTORY', 'RUNTIME_DIRECTORY', 'LOG_LEVEL'].includes(k)));

function start(name: string, cli: 'agent' | 'coordinator', args: string[]): ManagedProcess {
  return new ManagedProcess(name, spawn(process.execPath, [join(DIST, cli, 'cli.js'), ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] }));
}

function agentConfig(name: string, federation: Record<string, unknown>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const path = join(d, 'agent.toml');
  writeFileSync(path, toml({ agent: { state_dir: join(d, 'state'), runtime_dir: join(d, 'run') }, sampler: { interval_ms: 200, ring_capacity: 256 }, federation: { enabled: true, codec: 'plaintext', federation_id: 'f', ...federation } }));
  return path;
}

function coordinatorConfig(name: string, broker: Record<string, unknown>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const path = join(d, 'coordinator.toml');
  writeFileSync(path, toml({ coordinator: { state_dir: join(d, 'state'), runtime_dir: join(d, 'run'), codec: 'plaintext' }, federation: { id: 'f' }, broker }));
  return path;
}

test('agent: a plain broker on another host → exit 78 naming federation.broker and the fix', async () => {
  const config = agentConfig('agent-refused', { broker: REMOTE });
  const p = start('agent', 'agent', ['run', '--config', config]);
  const { code } = await within(p.exited, 20_000, 'the agent to exit');
  assert.is(code, 78, p.tail());
  assert.match(p.stderr, `federation.broker (${config}): '${REMOTE}' is not on this host`);
  assert.match(p.stderr, 'or set federation.allow_insecure = true');
});

test('agent: allow_insecure = true starts it and logs the warning', async () => {
  const p = start('agent', 'agent', ['run', '--config', agentConfig('agent-allowed', { broker: REMOTE, allow_insecure: true })]);
  try {
    const line = await p.waitForLog('federation.allow_insecure: the broker connection is unencrypted and unauthenticated; anyone on the path can read and forge federation messages', {}, 30_000);
    assert.is(line.broker, REMOTE);
    assert.is(line.level, 40, 'a warning');
  } finally {
    await p.stop();
  }
});

test('coordinator: a plain external broker on another host → exit 78 naming broker.url; check-config says the same', async () => {
  const config = coordinatorConfig('coord-refused', { url: REMOTE });
  const p = start('coordinator', 'coordinator', ['serve', '--config', config]);
  const { code } = await within(p.exited, 20_000, 'the coordinator to exit');
  assert.is(code, 78, p.tail());
  assert.match(p.stderr, `broker.url (${config}): '${REMOTE}' is not on this host`);
  const check = start('check', 'coordinator', ['check-config', '--config', config]);
  assert.is((await within(check.exited, 20_000, 'check-config')).code, 78);
  assert.match(check.stderr, 'or set broker.allow_insecure = true');
});

test('coordinator: broker.allow_insecure = true starts it and logs the warning at every start', async () => {
  const config = coordinatorConfig('coord-allowed', { url: REMOTE, allow_insecure: true });
  for (let run = 1; run <= 2; run++) {
    const p = start('coordinator', 'coordinator', ['serve', '--config', config]);
    try {
      const line = await p.waitForLog('broker.allow_insecure: the broker connection is unencrypted and unauthenticated; anyone on the path can read and forge federation messages', {}, 20_000);
      assert.is(line.broker, REMOTE, `start ${run}`);
    } finally {
      await p.stop();
    }
  }
});

test('TLS files that do not exist: the coordinator exits 78 naming broker.cert and the file', async () => {
  const missing = join(dir, 'nope', 'broker.crt');
  const config = coordinatorConfig('coord-missing-cert', { ca: join(dir, 'nope', 'ca.crt'), cert: missing, key: join(dir, 'nope', 'broker.key') });
  const p = start('coordinator', 'coordinator', ['serve', '--config', config]);
  const { code } = await within(p.exited, 20_000, 'the coordinator to exit');
  assert.is(code, 78, p.tail());
  assert.match(p.stderr, `broker.ca (${config}): CA file ${join(dir, 'nope', 'ca.crt')} does not exist`);
});

test('agent: a certificate the broker refuses is logged as an error naming the certificate, and retried', async () => {
  const good = makeCerts(join(dir, 'certs'), []);
  const rogue = makeCerts(join(dir, 'rogue'), ['agent-a']);
  const broker = await startEmbeddedBroker({ tls: loadServerMaterial({ ca: good.ca, ...good.broker }, (k) => k).material });
  const p = start('agent', 'agent', ['run', '--config', agentConfig('agent-rogue', { broker: broker.url, agent_id: 'agent-a', ca: good.ca, ...rogue.agent('agent-a'), reconnect_min_ms: 200, reconnect_max_ms: 400 })]);
  try {
    const line = await p.waitForLog('broker refused this agent or is not trusted; retrying', {}, 60_000);
    assert.is(line.code, 'TRANSPORT_NOT_AUTHORISED');
    assert.match(String(line.err), rogue.agent('agent-a').cert);
    assert.is(line.level, 50, 'an error, not a warning');
    await waitFor(() => p.find('broker refused this agent or is not trusted; retrying').length >= 2, 10_000, 'a second attempt');
  } finally {
    await p.stop();
    await broker.close();
  }
});

test('coordinator against Mosquitto with TLS: a certificate of another CA exits 77, a broker its CA does not vouch for 69, each naming the file', async () => {
  const good = makeCerts(join(dir, 'certs'), []);
  const rogue = makeCerts(join(dir, 'rogue'), ['agent-a']);
  const m = await startMosquitto({ tls: true, listenerConfig: (port) => shippedMosquittoConfig(port, good.dir) });
  try {
    const refusedCert = start('coordinator', 'coordinator', ['serve', '--config', coordinatorConfig('coord-rogue', { url: m.url, ca: good.ca, ...rogue.coordinator })]);
    assert.is((await within(refusedCert.exited, 20_000, 'the coordinator to exit')).code, 77, refusedCert.tail());
    assert.match(refusedCert.stderr, `[TRANSPORT_NOT_AUTHORISED] ${m.url} refused this client's certificate ${rogue.coordinator.cert} during the TLS handshake`);
    const untrusted = start('coordinator', 'coordinator', ['serve', '--config', coordinatorConfig('coord-untrusted', { url: m.url, ca: rogue.ca, ...good.coordinator })]);
    assert.is((await within(untrusted.exited, 20_000, 'the coordinator to exit')).code, 69, untrusted.tail());
    assert.match(untrusted.stderr, `[TRANSPORT_TLS_UNTRUSTED] ${m.url}: the broker's certificate did not verify against the CA file ${rogue.ca}`);
  } finally {
    await m.cleanup();
  }
});

test.run();
