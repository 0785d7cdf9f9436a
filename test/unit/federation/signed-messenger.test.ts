import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Announce, Message } from '../../../common/protocol/messages.js';
import { COORDINATOR_SIGNER, generateSigningKey, type SignerKey } from '../../../common/protocol/signature.js';
import { MemoryBus } from '../../../common/transport/memory.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { waitFor } from '../../helpers/wait.js';
import { ANNOUNCE } from '../protocol/fixtures.js';

// The agent's end of signing, over the in-memory transport: with the coordinator's key pinned,
// an agent takes only announcements and globals that key signed; unsigned and forged ones are
// dropped with their reason and never reach the handler.
const logger = pino({ level: 'silent' });
const coordinatorKey = generateSigningKey();
const pinned = (s: string): SignerKey => (s === COORDINATOR_SIGNER ? { key: coordinatorKey } : { refused: 'unknown-signer', detail: s });
const announce: Announce = { ...ANNOUNCE, federation: 'f' };

async function pair(senderKey: ReturnType<typeof generateSigningKey> | undefined) {
  const bus = new MemoryBus();
  const c = await bus.connect({ clientId: 'coordinator', logger });
  const a = await bus.connect({ clientId: 'a1', logger });
  const coordinator = new Messenger({ transport: c, federation: 'f', accept: new Set(['update', 'ack', 'presence']), logger, ...(senderKey ? { signer: { id: COORDINATOR_SIGNER, key: senderKey } } : {}) });
  const agent = new Messenger({ transport: a, federation: 'f', accept: new Set(['announce', 'global']), logger, keyOf: pinned });
  const got: Message[] = [];
  agent.onMessage((m) => void got.push(m));
  await a.subscribe(agent.topics.round);
  return { coordinator, agent, got, close: () => (coordinator.close(), agent.close()) };
}

test('an announcement signed by the pinned key is taken', async () => {
  const p = await pair(coordinatorKey);
  await p.coordinator.send(announce);
  await waitFor(() => p.got.length === 1, 5000, 'the announcement');
  assert.equal(p.got[0], announce);
  p.close();
});

for (const [name, key, reason] of [
  ['unsigned', undefined, 'unsigned'],
  ['signed by another key', generateSigningKey(), 'bad-signature'],
] as const) {
  test(`an announcement ${name} is dropped (${reason})`, async () => {
    const p = await pair(key);
    await p.coordinator.send(announce);
    await waitFor(() => (p.agent.stats().rejected[reason] ?? 0) === 1, 5000, `a ${reason} rejection`);
    assert.is(p.got.length, 0);
    p.close();
  });
}

test.run();
