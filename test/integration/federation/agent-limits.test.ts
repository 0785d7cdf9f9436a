import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CHUNK_HEADER_BYTES, CHUNK_MAGIC, MAX_CHUNKS, splitMessage } from '../../../common/protocol/chunks.js';
import { encodeMessage, TYPE_CODES } from '../../../common/protocol/frame.js';
import { PROTOCOL_VERSION, type Announce, type Update } from '../../../common/protocol/messages.js';
import { MemoryBus } from '../../../common/transport/memory.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { connectMqtt } from '../../../common/transport/mqtt.js';
import type { Transport } from '../../../common/transport/transport.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../coordinator/broker/embedded-broker.js';
import { ANNOUNCE, UPDATE } from '../../unit/protocol/fixtures.js';
import { exitAfter, waitFor } from '../../helpers/wait.js';

// Per-agent limits per round (issue 21), enforced before reassembly allocates: a hostile agent
// floods the coordinator's messenger (configured as coordinator/service.ts configures it) with
// more updates than it may send and with first chunks declaring 64 MiB sets; the excess is
// refused as rate-limited, logged and counted, nothing of it is buffered, an honest agent is not
// affected, and the next round's announcement gives the hostile agent a fresh allowance.
// Over the in-memory transport and the embedded (aedes) broker.
exitAfter(120_000, 'federation/agent-limits.test');

const FEDERATION = 'fed-1';
const BUDGET = { maxBytes: 1024 * 1024, maxMessages: 4 };

interface Rig {
  coordinator: Transport;
  evil: Transport;
  good: Transport;
  messenger: Messenger;
  warnings: Record<string, unknown>[];
  updates: Update[];
  close(): Promise<void>;
}

async function rig(kind: 'memory' | 'embedded'): Promise<Rig> {
  const warnings: Record<string, unknown>[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });
  const silent = pino({ level: 'silent' });
  let broker: EmbeddedBroker | undefined;
  let connect: (clientId: string) => Promise<Transport>;
  let coordinator: Transport;
  if (kind === 'memory') {
    const bus = new MemoryBus();
    connect = (clientId) => bus.connect({ clientId, logger: silent });
    coordinator = await connect('coordinator');
  } else {
    const b = (broker = await startEmbeddedBroker({ logger: silent }));
    connect = (clientId) => connectMqtt(b.url, { clientId, logger: silent });
    // As coordinator/service-broker.ts connects: over the trusted stream, the only one allowed retained publishes (announcements).
    coordinator = await connectMqtt(b.url, { clientId: 'coordinator', logger: silent, stream: () => b.trustedStream() });
  }
  const evil = await connect('evil');
  const good = await connect('good');
  const messenger = new Messenger({ transport: coordinator, federation: FEDERATION, accept: new Set(['update', 'ack', 'presence']), logger, agentBudget: BUDGET });
  const updates: Update[] = [];
  messenger.onMessage((m) => void (m.type === 'update' && updates.push(m)));
  for (const f of [messenger.topics.updateFilter, messenger.topics.ackFilter, messenger.topics.presenceFilter]) await coordinator.subscribe(f);
  return {
    coordinator,
    evil,
    good,
    messenger,
    warnings,
    updates,
    async close() {
      messenger.close();
      for (const t of [evil, good, coordinator]) await t.close();
      await broker?.close();
    },
  };
}

/** An encoded update as `agent`, with a body of its own (each a new message, a new hash). */
function updateOf(agent: string, round: number, n: number): Update {
  return { ...UPDATE, agent, round, body: Uint8Array.from({ length: 2000 }, (_, i) => (i * 17 + n) & 0xff) };
}

/** A forged first chunk of an update set declaring `length` bytes in MAX_CHUNKS chunks: the assembler would allocate `length` for it. */
function hugeFirstChunk(length: number, id: number): Uint8Array {
  const S = Math.ceil(length / MAX_CHUNKS);
  const b = new Uint8Array(CHUNK_HEADER_BYTES + S);
  const v = new DataView(b.buffer);
  v.setUint32(0, CHUNK_MAGIC, true);
  v.setUint8(4, PROTOCOL_VERSION);
  v.setUint8(5, TYPE_CODES.update);
  v.setUint32(12, MAX_CHUNKS, true);
  v.setUint32(16, length, true);
  v.setUint32(20, id, true);
  return b;
}

for (const kind of ['memory', 'embedded'] as const) {
  const t = suite(`agent limits over ${kind === 'memory' ? 'the in-memory transport' : 'the embedded broker'}`);
  let r: Rig;
  t.before(async () => {
    r = await rig(kind);
  });
  t.after(async () => {
    await r.close();
  });

  t('an agent sending more updates than a round allows: the excess is refused as rate-limited, logged and counted', async () => {
    const announce: Announce = { ...ANNOUNCE, round: 7 };
    await r.messenger.send(announce);
    const evilMessenger = new Messenger({ transport: r.evil, federation: FEDERATION, accept: new Set(['announce']), logger: pino({ level: 'silent' }) });
    for (let n = 0; n < 10; n++) await evilMessenger.send(updateOf('evil', 7, n));
    await waitFor(() => r.updates.length + (r.messenger.stats().rejected['rate-limited'] ?? 0) >= 10, 10_000, 'the coordinator handled all ten updates');
    evilMessenger.close();
    assert.is(r.updates.filter((u) => u.agent === 'evil').length, BUDGET.maxMessages);
    assert.is(r.messenger.stats().rejected['rate-limited'], 10 - BUDGET.maxMessages);
    const logged = r.warnings.filter((w) => w.reason === 'rate-limited');
    assert.is(logged.length, 10 - BUDGET.maxMessages);
    assert.match(String(logged[0]!.detail), /evil already sent 4 messages this round/);
  });

  t('first chunks declaring 64 MiB sets are refused before anything is allocated; an honest agent is unaffected', async () => {
    const before = r.messenger.stats().rejected['rate-limited'] ?? 0;
    const topic = r.messenger.topics.update('evil');
    for (let i = 0; i < 20; i++) await r.evil.publish(topic, hugeFirstChunk(64 * 1024 * 1024, i), { qos: 1 });
    await waitFor(() => (r.messenger.stats().rejected['rate-limited'] ?? 0) >= before + 20, 10_000, 'all twenty refused');
    // Without the per-agent budget each of these would have allocated its 64 MiB (up to maxPendingBytes, 512 MiB).
    assert.is(r.messenger.stats().pendingBytes, 0);
    const goodMessenger = new Messenger({ transport: r.good, federation: FEDERATION, accept: new Set(['announce']), logger: pino({ level: 'silent' }) });
    await goodMessenger.send(updateOf('good', 7, 0));
    goodMessenger.close();
    await waitFor(() => r.updates.some((u) => u.agent === 'good'), 10_000, 'the honest update arrived');
  });

  t("the next round's announcement gives every agent a fresh allowance; a republished one does not", async () => {
    const evilMessenger = new Messenger({ transport: r.evil, federation: FEDERATION, accept: new Set(['announce']), logger: pino({ level: 'silent' }) });
    const limited = () => r.messenger.stats().rejected['rate-limited'] ?? 0;
    const evilUpdates = () => r.updates.filter((u) => u.agent === 'evil').length;
    // Round 7 republished (after a reconnect): the allowance stays spent.
    await r.messenger.send({ ...ANNOUNCE, round: 7 });
    let before = limited();
    await evilMessenger.send(updateOf('evil', 7, 100));
    await waitFor(() => limited() > before, 10_000, 'refused in the same round');
    // Round 8: taken again.
    await r.messenger.send({ ...ANNOUNCE, round: 8 });
    before = evilUpdates();
    await evilMessenger.send(updateOf('evil', 8, 101));
    await waitFor(() => evilUpdates() > before, 10_000, 'taken in the next round');
    evilMessenger.close();
  });

  // The allowance is keyed on the topic's agent, which the broker's ACL binds to the client's
  // identity (deploy/mosquitto, the embedded broker's ACL), never on the id a message claims, and
  // it is charged before the signature is checked (reassembly must be bounded first). So an agent
  // claiming another's id spends only its own allowance: it cannot exhaust another agent's budget.
  t("updates claiming another agent's id, on the sender's own topic, spend the sender's allowance, not the victim's", async () => {
    await r.messenger.send({ ...ANNOUNCE, round: 9 });
    const limited = () => r.messenger.stats().rejected['rate-limited'] ?? 0;
    const mismatched = () => r.messenger.stats().rejected['agent-mismatch'] ?? 0;
    const [l0, m0] = [limited(), mismatched()];
    for (let n = 0; n < BUDGET.maxMessages + 3; n++) {
      for (const chunk of splitMessage(encodeMessage(updateOf('good', 9, 200 + n)))) await r.evil.publish(r.messenger.topics.update('evil'), chunk, { qos: 1 });
    }
    await waitFor(() => limited() - l0 + mismatched() - m0 >= BUDGET.maxMessages + 3, 10_000, 'the forged updates handled');
    assert.equal([mismatched() - m0, limited() - l0], [BUDGET.maxMessages, 3], "the forgeries are refused as agent-mismatch until evil's own allowance is spent");
    assert.not.ok(r.updates.some((u) => u.round === 9), 'none taken');
    // good's allowance for round 9 is whole: all of its updates are taken.
    const goodMessenger = new Messenger({ transport: r.good, federation: FEDERATION, accept: new Set(['announce']), logger: pino({ level: 'silent' }) });
    for (let n = 0; n < BUDGET.maxMessages; n++) await goodMessenger.send(updateOf('good', 9, 300 + n));
    goodMessenger.close();
    await waitFor(() => r.updates.filter((u) => u.round === 9 && u.agent === 'good').length === BUDGET.maxMessages, 10_000, "good's updates");
    assert.is(limited() - l0, 3, 'good was never rate-limited');
  });

  t.run();
}
