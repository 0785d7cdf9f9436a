// `serve` with federation.sessions = 1 and the plaintext codec (no key bundle): one fake agent
// answers a one-round session (a FedAvg round, then the final round), and the service exits 0
// on its own after a short drain. The plaintext warning is logged. Multi-agent CKKS rounds are
// the end-to-end suite's.
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modelParamCount } from '../../../common/protocol/federation-model.js';
import { ackFor, updateFor, type Message } from '../../../common/protocol/messages.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import { tempDir } from '../../helpers/paths.js';
import { within } from '../../helpers/wait.js';
import { ServiceProcess, writeCoordinatorConfig } from './harness.js';

const { dir, cleanup } = tempDir('icosfl-sessions-');
let service: ServiceProcess | undefined;
let transport: MqttTransport | undefined;
let messenger: Messenger | undefined;
test.after(async () => {
  messenger?.close();
  await transport?.close({ force: true }).catch(() => undefined);
  service?.kill();
  if (service) await within(service.exited, 5000, 'the service to exit').catch(() => undefined);
  cleanup();
});

test('a plaintext federation with sessions = 1 runs its session with one agent and exits 0', async () => {
  const config = writeCoordinatorConfig(dir, 'coordinator.toml', {
    coordinator: { state_dir: join(dir, 'state'), codec: 'plaintext', log_level: 'info' },
    broker: { embedded_port: 0 },
    federation: { id: 'plain', min_agents: 1, sessions: 1, round_timeout_s: 20, ack_timeout_s: 20, round_interval_s: 0.1 },
    model: { kind: 'linear', ridge_features: 0, rounds: 1 },
  });
  service = ServiceProcess.spawn(['serve', '--config', config]);
  const ready = await service.waitForLog('coordinator ready');
  assert.ok(service.logs.some((l) => l.level === 40 && l.codec === 'plaintext'), 'a warning says the coordinator sees the weights');

  const logger = pino({ level: 'silent' });
  transport = await connectMqtt(ready.broker as string, { clientId: 'agent-1', logger });
  const m = new Messenger({ transport, federation: 'plain', accept: new Set(['announce', 'global']), logger });
  messenger = m;
  const phases: string[] = [];
  const answered = new Set<string>();
  m.onMessage(async (msg: Message) => {
    if (msg.type === 'announce' && msg.phase === 'fedavg' && !answered.has(`u${msg.round}`)) {
      answered.add(`u${msg.round}`);
      phases.push('fedavg');
      const body = new Uint8Array(new Float32Array(modelParamCount(msg.model)).fill(0.5).buffer);
      await m.send(updateFor(msg, 'agent-1', { samples: 10, windows: 10, body }));
    } else if (msg.type === 'global' && !answered.has(`g${msg.round}`)) {
      answered.add(`g${msg.round}`);
      phases.push(`global ${msg.phase}`);
      await m.send(ackFor(msg, 'agent-1', { ok: true, loss: 0.8 }));
    }
  });
  await transport.subscribe(m.topics.round);
  await transport.subscribe(m.topics.globalFilter);
  await m.send({ type: 'presence', federation: 'plain', agent: 'agent-1', state: 'online', at: Date.now() });

  const exit = await within(service.exited, 30_000, 'the service to exit after its session');
  assert.is(exit.code, 0, service.stderr);
  assert.equal(phases, ['fedavg', 'global fedavg', 'global final']);
  assert.ok(service.logs.some((l) => l.msg === 'every configured session ran; stopping after a short drain'));
  assert.ok(service.logs.some((l) => l.msg === 'stopped' && l.code === 0));
});

test.run();
