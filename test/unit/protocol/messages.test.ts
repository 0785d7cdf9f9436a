import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeMessage } from '../../../common/protocol/frame.js';
import { FROM_AGENT, FROM_AGGREGATOR, FROM_COORDINATOR, MESSAGE_TYPES, WITH_BODY, ackFor, lossFromWire, lossToWire, updateFor, type Ack } from '../../../common/protocol/messages.js';
import { shardOf } from '../../../common/protocol/shards.js';
import { ANNOUNCE, FINAL_ANNOUNCE, GLOBAL } from './fixtures.js';

// messages.ts: the loss encoding JSON can carry, and replies built from what they answer.

test('lossToWire / lossFromWire: NaN, ±Infinity, negatives, ordinary values', () => {
  assert.is(lossToWire(NaN), null);
  assert.is(lossToWire(Infinity), 'Infinity');
  assert.is(lossToWire(-Infinity), null);
  assert.is(lossToWire(-0.5), null);
  assert.is(lossToWire(0), 0);
  assert.is(lossToWire(0.875), 0.875);
  assert.is(lossToWire(1e300), 1e300);
  assert.ok(Number.isNaN(lossFromWire(null)));
  assert.is(lossFromWire('Infinity'), Infinity);
  assert.is(lossFromWire(0.875), 0.875);
  assert.is(lossFromWire(0), 0);
});

test('every loss survives the frame (JSON) as what it meant', () => {
  for (const [x, back] of [
    [NaN, NaN],
    [Infinity, Infinity],
    [-1, NaN],
    [-Infinity, NaN],
    [0, 0],
    [1.25, 1.25],
  ] as const) {
    const ack = ackFor({ ...GLOBAL }, 'a1', { ok: true, loss: lossToWire(x), ridgeLosses: [[lossToWire(x)]] });
    const decoded = decodeMessage(encodeMessage(ack)) as Ack;
    const loss = lossFromWire(decoded.loss!);
    const ridge = lossFromWire(decoded.ridgeLosses![0]![0]!);
    if (Number.isNaN(back)) {
      assert.ok(Number.isNaN(loss), `${x} → ${loss}`);
      assert.ok(Number.isNaN(ridge), `${x} → ${ridge}`);
    } else {
      assert.is(loss, back, String(x));
      assert.is(ridge, back, String(x));
    }
  }
});

test('ackFor names the global it answers; updateFor the announcement', () => {
  const ack = ackFor({ ...GLOBAL, body: undefined } as never, 'a9', { ok: false, reason: 'no space' });
  assert.equal(ack, { type: 'ack', federation: 'fed-1', agent: 'a9', session: 1, round: 7, phase: 'fedavg', ok: false, reason: 'no space' });
  const body = new Uint8Array([1, 2, 3, 4]);
  const u = updateFor(ANNOUNCE, 'a9', { samples: 5, windows: 9, body, baseLoss: 1 });
  assert.equal(u, { type: 'update', federation: 'fed-1', agent: 'a9', session: 1, round: 7, phase: 'fedavg', codec: 'ckks', samples: 5, windows: 9, body, baseLoss: 1 });
  // A sharded round: the update names its agent's shard, which picks its topic.
  const sharded = updateFor({ ...ANNOUNCE, shards: [1, 2, 0, 4] }, 'a9', { samples: 5, windows: 9, body });
  assert.is(sharded.shard, shardOf('a9', 4));
  assert.is(updateFor(ANNOUNCE, 'a9', { samples: 5, windows: 9, body }).shard, undefined);
  assert.throws(() => updateFor(FINAL_ANNOUNCE, 'a9', { samples: 1, windows: 1, body }), (e: unknown) => e instanceof RangeError && /final round takes no updates/.test((e as Error).message));
});

test('who sends what, and which types carry a body', () => {
  assert.equal([...MESSAGE_TYPES].sort(), ['ack', 'announce', 'global', 'partial', 'presence', 'update']);
  assert.equal([...FROM_COORDINATOR].sort(), ['announce', 'global']);
  assert.equal([...FROM_AGENT].sort(), ['ack', 'presence', 'update']);
  assert.equal([...FROM_AGGREGATOR], ['partial']);
  assert.equal([...WITH_BODY].sort(), ['global', 'partial', 'update']);
});

test.run();
