// Signed messages through the real `icosfl-coordinator serve` (embedded broker) and its CLI:
// `keys init` makes the coordinator's signing key pair, `agents enroll|revoke|list` manage the
// agents' keys while the service runs, and the service takes only what enrolled agents signed —
// unsigned, unknown, forged, revoked and replayed messages are refused with their reason (and
// counted in `status`), while its own announcements verify against the pinned public key.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPublicKeyFile } from '../../../common/crypto/signing-keys.js';
import { splitMessage } from '../../../common/protocol/chunks.js';
import type { Announce, Presence } from '../../../common/protocol/messages.js';
import { COORDINATOR_SIGNER, generateSigningKey, publicKeyText, type Signer, type SignerKey } from '../../../common/protocol/signature.js';
import { Messenger, encodeForWire } from '../../../common/transport/messenger.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import { tempDir } from '../../helpers/paths.js';
import { waitFor, within } from '../../helpers/wait.js';
import { runCoordinatorCli, ServiceProcess, writeCoordinatorConfig } from './harness.js';

const { dir, cleanup } = tempDir('icosfl-signed-');
const FEDERATION = 'signed-test';
const transports: MqttTransport[] = [];
const messengers: Messenger[] = [];
let service: ServiceProcess | undefined;
let config = '';
let brokerUrl = '';
const logger = pino({ level: 'silent' });
const agent1 = generateSigningKey();

const cli = (...args: string[]) => runCoordinatorCli(args);

test.before(async () => {
  const keys = await cli('keys', 'init', '--out', join(dir, 'keys'), '--federation-id', FEDERATION);
  assert.is(keys.code, 0, keys.stderr);
  assert.match(keys.stdout, /coordinator-signing\.key/);
  config = writeCoordinatorConfig(dir, 'coordinator.toml', {
    coordinator: { state_dir: 'state', keys: 'keys/coordinator.json', signing_key: 'keys/coordinator-signing.key', log_level: 'info' },
    broker: { embedded_port: 0 },
    federation: { min_agents: 1, round_timeout_s: 60 },
  });
});

test.after(async () => {
  for (const m of messengers) m.close();
  await Promise.all(transports.map((t) => t.close({ force: true }).catch(() => undefined)));
  service?.kill();
  if (service) await within(service.exited, 5000, 'the service to exit').catch(() => undefined);
  cleanup();
});

async function status(): Promise<{ rejected: Record<string, number>; duplicates: number; received: Record<string, number> }> {
  const r = await cli('status', '--config', config, '--json');
  assert.is(r.code, 0, r.stderr);
  const m = (JSON.parse(r.stdout) as { messenger: { rejected: Record<string, number>; duplicates: number; received: Record<string, number> } }).messenger;
  return { rejected: m.rejected, duplicates: m.duplicates, received: m.received };
}

async function knownAgents(): Promise<string[]> {
  const r = await cli('agents', '--config', config, '--json');
  return (JSON.parse(r.stdout) as { agents: { id: string }[] }).agents.map((a) => a.id).sort();
}

/** An MQTT client that signs as `signer` (or not at all) and verifies the coordinator's messages. */
async function fakeAgent(id: string, signer: Signer | undefined): Promise<{ messenger: Messenger; transport: MqttTransport; announcements: Announce[] }> {
  const transport = await connectMqtt(brokerUrl, { clientId: `${id}-${transports.length}`, logger });
  transports.push(transport);
  const pinned = loadPublicKeyFile(join(dir, 'keys', 'coordinator-signing.pub'));
  const keyOf = (s: string): SignerKey => (s === COORDINATOR_SIGNER ? { key: pinned } : { refused: 'unknown-signer', detail: s });
  const messenger = new Messenger({ transport, federation: FEDERATION, accept: new Set(['announce', 'global']), logger, keyOf, ...(signer ? { signer } : {}) });
  messengers.push(messenger);
  const announcements: Announce[] = [];
  messenger.onMessage((m) => {
    if (m.type === 'announce') announcements.push(m);
  });
  await transport.subscribe(messenger.topics.round);
  return { messenger, transport, announcements };
}

const presence = (agent: string): Presence => ({ type: 'presence', federation: FEDERATION, agent, state: 'online', at: Date.now() });

test('agents enroll and list: the key is stored; a malformed key or a second enrolment is refused', async () => {
  const ok = await cli('agents', 'enroll', 'agent-1', publicKeyText(agent1), '--config', config);
  assert.is(ok.code, 0, ok.stderr);
  const keyFile = join(dir, 'agent-2.pub');
  writeFileSync(keyFile, publicKeyText(generateSigningKey()) + '\n');
  const fromFile = await cli('agents', 'enroll', 'agent-2', '--key-file', keyFile, '--config', config);
  assert.is(fromFile.code, 0, fromFile.stderr);
  const again = await cli('agents', 'enroll', 'agent-1', publicKeyText(generateSigningKey()), '--config', config);
  assert.is(again.code, 78, again.stderr);
  assert.match(again.stderr, /already enrolled/);
  const bad = await cli('agents', 'enroll', 'agent-9', 'ed25519:short', '--config', config);
  assert.is(bad.code, 77, bad.stderr);
  assert.match(bad.stderr, /not an Ed25519 public key/);
  const list = await cli('agents', 'list', '--config', config, '--json');
  const listed = JSON.parse(list.stdout) as { agents: { id: string; key: string; revokedAt: string | null }[] };
  assert.equal(listed.agents.map((a) => [a.id, a.revokedAt]), [['agent-1', null], ['agent-2', null]]);
  assert.is(listed.agents[0]!.key, publicKeyText(agent1));
});

test('serve signs its announcements (they verify against the pinned key) and takes a signed, enrolled agent', async () => {
  service = ServiceProcess.spawn(['serve', '--config', config]);
  const ready = await service.waitForLog('coordinator ready');
  brokerUrl = ready.broker as string;
  const on = await service.waitForLog('message signing on: taking only messages signed by enrolled agents');
  assert.is(on.enrolled, 2);
  const a = await fakeAgent('agent-1', { id: 'agent-1', key: agent1 });
  await a.messenger.send(presence('agent-1'));
  await waitFor(async () => (await knownAgents()).includes('agent-1'), 10_000, 'agent-1 to be listed', 200);
  await waitFor(() => a.announcements.length > 0, 10_000, 'a signed announcement');
  assert.is(a.messenger.stats().rejected.unsigned ?? 0, 0);
});

test('unsigned, unknown, forged: refused with their reason, counted, the agent never listed', async () => {
  const unsigned = await fakeAgent('agent-2', undefined);
  await unsigned.messenger.send(presence('agent-2'));
  const stranger = await fakeAgent('agent-3', { id: 'agent-3', key: generateSigningKey() });
  await stranger.messenger.send(presence('agent-3'));
  const forger = await fakeAgent('agent-1', { id: 'agent-1', key: generateSigningKey() });
  await forger.messenger.send({ ...presence('agent-1'), state: 'incompatible', reason: 'forged' });
  await waitFor(async () => {
    const r = (await status()).rejected;
    return (r.unsigned ?? 0) >= 1 && (r['unknown-signer'] ?? 0) >= 1 && (r['bad-signature'] ?? 0) >= 1;
  }, 10_000, 'the three rejections', 200);
  assert.equal(await knownAgents(), ['agent-1']);
  const agents = JSON.parse((await cli('agents', '--config', config, '--json')).stdout) as { agents: { id: string; state: string }[] };
  assert.is(agents.agents[0]!.state, 'online', 'the forged presence changed nothing');
  const rejectedLog = service!.logs.find((l) => l.msg === 'message rejected' && l.reason === 'bad-signature');
  assert.ok(rejectedLog, 'the rejection is logged with its reason');
  // Security events: one child logger, a stable event field.
  assert.is(rejectedLog!.component, 'security');
  assert.is(rejectedLog!.event, 'message-rejected');
});

test('a copy of a signed update is taken once', async () => {
  const a = await fakeAgent('agent-1', { id: 'agent-1', key: agent1 });
  await waitFor(() => a.announcements.length > 0, 10_000, 'the announcement');
  const ann = a.announcements.at(-1)!;
  const update = { type: 'update' as const, federation: FEDERATION, agent: 'agent-1', session: ann.session, round: ann.round, phase: 'ridge' as const, samples: 10, windows: 10, codec: 'ckks' as const, body: new Uint8Array(64) };
  const bytes = splitMessage(encodeForWire(update, { id: 'agent-1', key: agent1 }, Date.now()))[0]!;
  const before = await status();
  // The same bytes twice, on a fresh connection each (as a replaying attacker would).
  for (let i = 0; i < 2; i++) {
    const t = await connectMqtt(brokerUrl, { clientId: `replayer-${i}`, logger });
    transports.push(t);
    await t.publish(a.messenger.topics.update('agent-1'), bytes, { qos: 1 });
  }
  // The chunk assembler remembers recent messages (a QoS 1 redelivery is a duplicate); past its
  // memory the signature's nonce refuses the copy as replayed (test/unit/protocol/signature.test.ts).
  await waitFor(async () => {
    const s = await status();
    return s.duplicates + (s.rejected.replayed ?? 0) > before.duplicates + (before.rejected.replayed ?? 0);
  }, 10_000, 'the copy to be refused', 200);
  const after = await status();
  assert.is((after.received.update ?? 0) - (before.received.update ?? 0), 1, 'one update taken');
});

test('agents revoke: the running service refuses the agent from then on, without a restart', async () => {
  const r = await cli('agents', 'revoke', 'agent-1', '--config', config);
  assert.is(r.code, 0, r.stderr);
  const list = JSON.parse((await cli('agents', 'list', '--config', config, '--json')).stdout) as { agents: { id: string; revokedAt: string | null }[] };
  assert.ok(list.agents.find((a) => a.id === 'agent-1')!.revokedAt);
  const a = await fakeAgent('agent-1', { id: 'agent-1', key: agent1 });
  await waitFor(async () => {
    await a.messenger.send(presence('agent-1'));
    return ((await status()).rejected['revoked-signer'] ?? 0) >= 1;
  }, 10_000, 'a revoked-signer rejection', 500);
  const changed = await service!.waitForLog('enrolled agents changed');
  assert.is(changed.component, 'security');
  assert.is(changed.event, 'enrolment-changed');
  assert.equal(changed.revoked, ['agent-1']);
  assert.equal(changed.enrolled, []);
  const again = await cli('agents', 'enroll', 'agent-1', publicKeyText(agent1), '--config', config);
  assert.is(again.code, 78);
  assert.match(again.stderr, /revoked .*--force/);
});

test.run();
