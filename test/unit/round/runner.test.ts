import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Message, Presence } from '../../../common/protocol/messages.js';
import type { InboundHandler, Messenger } from '../../../common/transport/messenger.js';
import { MemoryJournal } from '../../../coordinator/round/journal.js';
import { reduce } from '../../../coordinator/round/reducer.js';
import { RoundRunner } from '../../../coordinator/round/runner.js';
import { plaintextStrategy } from '../../../coordinator/strategy/aggregation.js';
import { waitFor } from '../../helpers/wait.js';
import { checkBody, Driver, testSettings } from './driver.js';

// The runner's restart: a second runner on the journal the first one left rebuilds its state
// (then applies its own 'start'), with no snapshot yet, the very first round in progress.

function fakeMessenger(): { messenger: Messenger; deliver: (m: Message) => Promise<void>; sent: Message[] } {
  let handler: InboundHandler | undefined;
  const sent: Message[] = [];
  const messenger = {
    onMessage: (h: InboundHandler) => void (handler = h),
    send: async (m: Message) => {
      sent.push(m);
      return 0;
    },
    sendGlobal: async (m: Message) => {
      sent.push(m);
      return { chunks: 1, bytes: 100 };
    },
  } as unknown as Messenger;
  return { messenger, sent, deliver: async (m) => void (await handler!(m, { topic: '', retained: false, hash: '', bytes: 0 })) };
}

test('a restarted runner replays the journal to the state the first one had', async () => {
  const settings = testSettings();
  const journal = new MemoryJournal();
  let now = 1000;
  const clock = () => now;
  const one = fakeMessenger();
  const first = new RoundRunner({ settings, messenger: one.messenger, journal, strategy: plaintextStrategy(), logger: pino({ level: 'silent' }), clock, tickMs: 3_600_000 });
  await first.start();
  const presence = (agent: string): Presence => ({ type: 'presence', federation: 't', agent, state: 'online', at: now });
  now = 1010;
  await one.deliver(presence('a'));
  now = 1020;
  await one.deliver(presence('b'));
  assert.is(first.state.current?.round, 1, 'announced by the second presence');
  assert.equal(one.sent.map((m) => m.type), ['announce']);
  // a's update, built from the announcement by the driver's helper.
  const d = new Driver(settings, { state: first.state, now: 1030 });
  now = 1030;
  await one.deliver(d.updateMessage('a', { samples: 4 }));
  assert.ok('a' in first.state.current!.updates);
  await first.stop();
  const before = first.state;

  now = 1500;
  const two = fakeMessenger();
  const second = new RoundRunner({ settings, messenger: two.messenger, journal, strategy: plaintextStrategy(), logger: pino({ level: 'silent' }), clock, tickMs: 3_600_000 });
  await second.start();
  const expected = reduce(before, { type: 'start', now: 1500 }, settings, checkBody).state;
  assert.equal(second.state, expected);
  assert.is(second.state.current!.round, 1);
  assert.ok('a' in second.state.current!.updates, "a's update survived the restart");
  assert.is(second.state.current!.deadline, 1020 + settings.roundTimeoutMs);
  assert.equal(two.sent.map((m) => m.type), ['announce']);
  // The round finishes on the restarted runner: b's update closes it, the sum uses a's stored body.
  now = 1600;
  await two.deliver(d.updateMessage('b', { samples: 6 }));
  await waitFor(() => second.state.current?.status === 'acking', 2000, 'the global published');
  assert.equal(second.state.current!.global?.totalSamples, 10);
  await second.stop();
});

test('key rotation: a journal whose rounds switched to a key this runner has no bundle of refuses to start, naming both files', async () => {
  const OLD = 'a'.repeat(32);
  const NEW = 'b'.repeat(32);
  const settings = testSettings({ codec: 'ckks', keyId: OLD, keyEpoch: 0 });
  const journal = new MemoryJournal();
  const d = new Driver(settings, { journal }); // journals every durable event it feeds
  d.feed({ type: 'keys-offered', now: 0, epoch: 1, keyId: NEW });
  for (const a of ['a', 'b']) d.feed({ type: 'presence', now: 0, message: { type: 'presence', federation: 't', agent: a, state: 'online', at: 0, keys: [OLD, NEW] } });
  assert.is(d.announce().keyEpoch, 1, 'the journal switched to epoch 1');
  const strategy = plaintextStrategy();
  const only = (keyId: string) => (k: string) => (k === keyId ? strategy : undefined);
  const runner = new RoundRunner({ settings, messenger: fakeMessenger().messenger, journal, strategy, strategyFor: only(OLD), logger: pino({ level: 'silent' }), clock: () => 10, tickMs: 3_600_000 });
  try {
    await runner.start();
    assert.unreachable('started without the active key');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'CRYPTO_KEY_INVALID');
    assert.match((err as Error).message, /key epoch 1 \(key b{32}\), which is in neither coordinator\.keys nor coordinator\.next_keys/);
  }
  const ok = new RoundRunner({ settings, messenger: fakeMessenger().messenger, journal, strategy, strategyFor: only(NEW), logger: pino({ level: 'silent' }), clock: () => 10, tickMs: 3_600_000 });
  await ok.start();
  assert.is(ok.state.current?.announce.keyEpoch, 1);
  await ok.stop();
});

test.run();
