// `icosfl-coordinator serve` through the real entry point: an embedded broker on a free loopback
// port, a fresh federation from `keys init`, a fake agent (a real MQTT client over
// common/transport) that says it is online. Checks readiness (log line and sd_notify READY=1),
// the control-socket commands, the retained announcement, SIGTERM, the state-directory lock and
// the exit codes of the usual start failures. Full multi-agent rounds: the end-to-end suite.
import { createServer } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Announce } from '../../../common/protocol/messages.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import { tempDir } from '../../helpers/paths.js';
import { waitFor, within } from '../../helpers/wait.js';
import { NotifyListener } from '../daemon/harness.js';
import { runCoordinatorCli, ServiceProcess, writeCoordinatorConfig } from './harness.js';

const { dir, cleanup } = tempDir('icosfl-serve-');
const FEDERATION = 'serve-test';
const services: ServiceProcess[] = [];
const transports: MqttTransport[] = [];
const messengers: Messenger[] = [];
let listener: NotifyListener | undefined;
let config = '';
let service: ServiceProcess | undefined;
let brokerUrl = '';
let port = 0;

test.before(async () => {
  listener = await NotifyListener.start(dir);
  const keys = await runCoordinatorCli(['keys', 'init', '--out', join(dir, 'keys'), '--federation-id', FEDERATION]);
  assert.is(keys.code, 0, keys.stderr);
  config = writeCoordinatorConfig(dir, 'coordinator.toml', {
    coordinator: { state_dir: 'state', keys: 'keys/coordinator.json', log_level: 'info' },
    broker: { embedded_port: 0 },
    // A round nobody answers is abandoned after 1.5 s: `rounds` then has something to show.
    federation: { min_agents: 1, round_timeout_s: 1.5, ack_timeout_s: 1, round_interval_s: 0.5 },
  });
});

test.after(async () => {
  for (const m of messengers) m.close();
  await Promise.all(transports.map((t) => t.close({ force: true }).catch(() => undefined)));
  for (const s of services) s.kill();
  await Promise.all(services.map((s) => within(s.exited, 5000, 'a killed service to exit').catch(() => undefined)));
  listener?.stop();
  cleanup();
});

const cli = (...args: string[]) => runCoordinatorCli(args);

test('serve becomes ready: the log names the embedded broker port, systemd gets READY=1', async () => {
  service = ServiceProcess.spawn(['serve', '--config', config], { NOTIFY_SOCKET: listener!.path });
  services.push(service);
  const ready = await service.waitForLog('coordinator ready');
  assert.is(ready.federation, FEDERATION);
  assert.is(ready.embedded, true);
  port = ready.port as number;
  brokerUrl = ready.broker as string;
  assert.ok(port > 0, `port ${port}`);
  assert.is(brokerUrl, `mqtt://127.0.0.1:${port}`);
  const notified = await listener!.waitFor('READY=1');
  assert.match(notified.text, /STATUS=/);
});

test('status, agents and rounds answer while it runs, as text and as --json', async () => {
  const status = await cli('status', '--config', config);
  assert.is(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`federation\\s+${FEDERATION}, codec ckks`));
  assert.match(status.stdout, new RegExp(`broker\\s+mqtt://127\\.0\\.0\\.1:${port} \\(embedded, port ${port}`));
  const json = await cli('status', '--config', config, '--json');
  assert.is(json.code, 0, json.stderr);
  const st = JSON.parse(json.stdout) as { ready: boolean; federation: { id: string }; broker: { port: number; connected: boolean }; agents: { known: number } };
  assert.is(st.ready, true);
  assert.is(st.federation.id, FEDERATION);
  assert.is(st.broker.port, port);
  assert.is(st.broker.connected, true);

  const agents = await cli('agents', '--config', config);
  assert.is(agents.code, 0, agents.stderr);
  assert.match(agents.stdout, /no agent has been heard from yet/);
  const agentsJson = JSON.parse((await cli('agents', '--config', config, '--json')).stdout) as { agents: unknown[]; presenceTimeoutMs: number };
  assert.equal(agentsJson.agents, []);
  assert.is(agentsJson.presenceTimeoutMs, 90_000);

  const rounds = await cli('rounds', '--config', config, '--json', '--limit', '5');
  assert.is(rounds.code, 0, rounds.stderr);
  assert.equal(JSON.parse(rounds.stdout), { rounds: [], total: 0 });
  const badLimit = await cli('rounds', '--config', config, '--limit', '0');
  assert.is(badLimit.code, 64, badLimit.stderr);
});

test('a fake agent saying it is online is listed, and gets the retained ridge announcement', async () => {
  const logger = pino({ level: 'silent' });
  const transport = await connectMqtt(brokerUrl, { clientId: 'agent-1', logger });
  transports.push(transport);
  const messenger = new Messenger({ transport, federation: FEDERATION, accept: new Set(['announce', 'global']), logger });
  messengers.push(messenger);
  const announcements: Announce[] = [];
  messenger.onMessage((m) => {
    if (m.type === 'announce') announcements.push(m);
  });
  await transport.subscribe(messenger.topics.round);
  await messenger.send({ type: 'presence', federation: FEDERATION, agent: 'agent-1', state: 'online', at: Date.now() });

  await waitFor(() => announcements.length > 0, 10_000, 'the round announcement');
  const a = announcements[0]!;
  assert.is(a.phase, 'ridge', 'the default model has ridge features: a session starts with the ridge round');
  assert.is(a.federation, FEDERATION);
  assert.is(a.codec, 'ckks');

  const listed = JSON.parse((await cli('agents', '--config', config, '--json')).stdout) as { agents: { id: string; state: string; online: boolean }[] };
  assert.equal(listed.agents.map((x) => [x.id, x.state, x.online]), [['agent-1', 'online', true]]);
  const text = await cli('agents', '--config', config);
  assert.match(text.stdout, /^AGENT\s+STATE\s+ONLINE/m);
  assert.match(text.stdout, /^agent-1\s+online\s+yes/m);

  // Nobody sends an update: the round is abandoned at its deadline and shows in `rounds`.
  await waitFor(async () => (JSON.parse((await cli('rounds', '--config', config, '--json')).stdout) as { total: number }).total > 0, 15_000, 'a finished round', 200);
  const rounds = await cli('rounds', '--config', config);
  assert.is(rounds.code, 0, rounds.stderr);
  assert.match(rounds.stdout, /^ROUND\s+SESSION\s+PHASE\/STEP\s+OUTCOME/m);
  assert.match(rounds.stdout, /^\s*1\s+1\s+ridge\s+abandoned/m);
  const status = await cli('status', '--config', config);
  assert.match(status.stdout, /agents\s+1 online \(1 ready\), 1 known/);
});

test('a second serve on the same state directory fails with COORDINATOR_BUSY (exit 75) while the first runs', async () => {
  const second = await runCoordinatorCli(['serve', '--config', config, '--set', 'broker.embedded_port=0']);
  assert.is(second.code, 75, second.stderr);
  assert.match(second.stderr, /\[COORDINATOR_BUSY\]/);
  const still = await cli('status', '--config', config, '--json');
  assert.is(still.code, 0, 'the first one still answers');
});

test('SIGTERM: exit 0 within 5 s, the broker port is free again, the state directory unlocked', async () => {
  const s = service!;
  const sent = Date.now();
  s.proc.kill('SIGTERM');
  const exit = await within(s.exited, 5000, 'exit after SIGTERM');
  assert.is(exit.code, 0, s.stderr);
  assert.ok(exit.at - sent < 5000, `took ${exit.at - sent} ms`);
  assert.ok(s.logs.some((l) => l.msg === 'stopped'), 'logged stopped');
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
  const none = await cli('status', '--config', config);
  assert.is(none.code, 69, 'status with nothing running');
  assert.match(none.stderr, /\[DAEMON_NOT_RUNNING\] icosfl-coordinator is not running: /);

  // Unlocked: a new serve on the same directory starts and resumes its state.
  const again = ServiceProcess.spawn(['serve', '--config', config]);
  services.push(again);
  await again.waitForLog('coordinator ready');
  again.proc.kill('SIGTERM');
  assert.is((await within(again.exited, 5000, 'second exit')).code, 0);
});

test('start failures: secret-key bundle 77, bad config 78 naming the key, unreachable broker 69', async () => {
  const secret = await cli('serve', '--config', config, '--set', `coordinator.keys=${join(dir, 'keys', 'agent.json')}`, '--set', `coordinator.state_dir=${join(dir, 'other')}`);
  assert.is(secret.code, 77, secret.stderr);
  assert.match(secret.stderr, /\[CRYPTO_SECRET_KEY_FORBIDDEN\] coordinator\.keys \(flag --set coordinator\.keys\)/);

  const bad = writeCoordinatorConfig(dir, 'bad.toml', { broker: { chunk_bytes: 100 } });
  const r = await cli('serve', '--config', bad);
  assert.is(r.code, 78);
  assert.match(r.stderr, `broker.chunk_bytes (${bad}): must be ≥ 4096`);
  const check = await cli('check-config', '--config', bad);
  assert.is(check.code, 78);

  const mismatch = await cli('serve', '--config', config, '--set', 'federation.id=someone-else');
  assert.is(mismatch.code, 78);
  assert.match(mismatch.stderr, /federation\.id \(flag --set federation\.id\): 'someone-else' is not the federation of coordinator\.keys/);

  // A port nothing listens on: the first connection fails within ~10 s.
  const closed = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const started = Date.now();
  const away = await cli('serve', '--config', config, '--set', `broker.url=mqtt://127.0.0.1:${closed}`);
  assert.is(away.code, 69, away.stderr);
  assert.match(away.stderr, /\[TRANSPORT_UNAVAILABLE\]/);
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
});

test('check-config prints the effective config with the federation id from the key bundle', async () => {
  const r = await cli('check-config', '--config', config);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `config OK: ${config}`);
  assert.match(r.stdout, `federation ${FEDERATION}, codec ckks, key `);
  assert.match(r.stdout, new RegExp(`\\[federation\\]\\nid = "${FEDERATION}"`));
  assert.match(r.stdout, /\[model\]\n(.*\n)*?hidden_units = 32\n/);
});


test.run();
