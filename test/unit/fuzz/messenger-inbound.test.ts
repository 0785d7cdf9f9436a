import fc from 'fast-check';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MIN_CHUNK_BYTES, splitMessage } from '../../../common/protocol/chunks.js';
import { encodeMessage } from '../../../common/protocol/frame.js';
import { MESSAGE_SCHEMAS, type Message } from '../../../common/protocol/messages.js';
import { routeMismatch } from '../../../common/protocol/topics.js';
import { MemoryBus, type MemoryTransport } from '../../../common/transport/memory.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { FUZZ_RUNS, FUZZ_SEED, applyMutations, fuzzOptions, mutationArb } from '../../helpers/fuzz.js';
import { ACK, ANNOUNCE, EVERY_MESSAGE, PRESENCE, UPDATE } from '../protocol/fixtures.js';

// The coordinator's inbound path, whole: an MQTT payload on an agent topic → chunk reassembly →
// decodeMessage → route check → the handler (common/transport/messenger.ts), over the real
// in-memory broker. A hostile agent publishes random bytes, mutated chunks and valid messages of
// the wrong type, federation or sender on the coordinator's topics. The handler must only ever
// see schema-valid messages that fit their topic, the messenger must never throw (the transport
// logs a handler failure, which fails this test), and every payload must be handled promptly.
const FEDERATION = 'fed-1';
const failures: string[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void failures.push(line) });

let bus: MemoryBus;
let coordinator: MemoryTransport;
let hostile: MemoryTransport;
let messenger: Messenger;
const delivered: { message: Message; topic: string }[] = [];

test.before(async () => {
  bus = new MemoryBus();
  coordinator = await bus.connect({ clientId: 'coordinator', logger });
  hostile = await bus.connect({ clientId: 'hostile', logger: pino({ level: 'silent' }) });
  messenger = new Messenger({ transport: coordinator, federation: FEDERATION, accept: new Set(['update', 'ack', 'presence']), logger: pino({ level: 'silent' }), chunkBytes: MIN_CHUNK_BYTES });
  messenger.onMessage((message, ctx) => void delivered.push({ message, topic: ctx.topic }));
  for (const f of [messenger.topics.updateFilter, messenger.topics.ackFilter, messenger.topics.presenceFilter]) await coordinator.subscribe(f);
  console.log(`  messenger fuzz: seed ${FUZZ_SEED}, ${FUZZ_RUNS} inputs`);
});
test.after(async () => {
  messenger.close();
  await hostile.close();
  await coordinator.close();
});

// Only this federation's topics: the coordinator subscribes to no other (another federation shows in the messages).
const topicArb = fc.tuple(fc.constantFrom('update', 'ack', 'presence'), fc.constantFrom('a1', 'edge.node_7', 'other'), fc.constant(FEDERATION)).map(([kind, agent, fed]) => `icosfl/v1/${fed}/${kind}/${agent}`);
const messages = [...EVERY_MESSAGE.map(([, m]) => m), { ...UPDATE, federation: 'fed-2' }, { ...ACK, agent: 'edge.node_7' }, { ...PRESENCE, agent: 'other' }, ANNOUNCE];
/** One hostile publication: the chunks of a valid or mutated message, or random payloads. */
const payloadsArb = fc.oneof(
  fc.tuple(fc.nat({ max: messages.length - 1 }), fc.option(fc.tuple(fc.nat(), mutationArb([8, 12, 16, 20])), { freq: 2 }), fc.integer({ min: 1, max: 2 ** 31 })).map(([i, mutate, nonce]) => {
    // A nonce in a field every type has a use for, so repeats are new messages, not redeliveries.
    const m = messages[i]!;
    const fresh = 'session' in m ? { ...m, session: nonce } : { ...m, at: nonce };
    const chunks = splitMessage(encodeMessage(fresh as Message), MIN_CHUNK_BYTES * 2);
    if (mutate) chunks[mutate[0] % chunks.length] = applyMutations(chunks[mutate[0] % chunks.length]!, mutate[1]);
    return chunks;
  }),
  fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 3 }),
);

/** Waits until the coordinator's transport has handled every payload published so far (bounded: a hang fails). */
async function drained(published: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (coordinator.status().received >= published) {
      await new Promise((r) => setImmediate(r));
      return;
    }
    await new Promise((r) => setImmediate(r));
  }
  assert.unreachable(`payload ${published} was not handled within 1,000 event-loop turns`);
}

test(`hostile payloads on the coordinator's topics (${FUZZ_RUNS}): only valid, routed messages reach the handler`, async () => {
  let published = 0;
  await fc.assert(
    fc.asyncProperty(topicArb, payloadsArb, async (topic, payloads) => {
      delivered.length = 0;
      for (const p of payloads) await hostile.publish(topic, p, { qos: 1 });
      published += payloads.length;
      await drained(published);
      assert.equal(failures, [], 'the messenger threw');
      for (const d of delivered) {
        const { body: _body, ...header } = d.message as Message & { body?: Uint8Array };
        assert.ok(MESSAGE_SCHEMAS[d.message.type].safeParse(header).success, 'schema-valid');
        assert.ok(['update', 'ack', 'presence'].includes(d.message.type));
        assert.is(routeMismatch(d.topic, d.message, FEDERATION), undefined);
      }
    }),
    fuzzOptions(),
  );
  const stats = messenger.stats();
  console.log('  received:', stats.received, 'rejected:', stats.rejected, 'duplicates:', stats.duplicates);
  // The barrage reached every stage: accepted messages, and refusals at chunk, frame and route level.
  assert.ok((stats.received.update ?? 0) > 100 && (stats.received.ack ?? 0) > 100 && (stats.received.presence ?? 0) > 100);
  for (const r of ['bad-magic', 'bad-chunk', 'type-not-accepted', 'wrong-federation', 'agent-mismatch'] as const) assert.ok((stats.rejected[r] ?? 0) > 0, `some payloads were refused as ${r}`);
});

test.run();
