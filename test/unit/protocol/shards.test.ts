import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { federationTopics, parseTopic, routeMismatch } from '../../../common/protocol/topics.js';
import { MAX_SHARDS, parseShardSpec, shardOf } from '../../../common/protocol/shards.js';
import { PARTIAL, SHARDED_UPDATE, UPDATE } from './fixtures.js';

// shards.ts: the agent → shard rule every end applies, and the shard topics' routing.
const T = federationTopics('fed-1');

test('shardOf is SHA-256 of the id, first four bytes big-endian, mod S: fixed values, stable, in range, spread', () => {
  // Written out from `printf agent-1 | sha256sum` (first 8 hex digits 0x…), not from the code under test.
  assert.is(shardOf('agent-1', 4), 0x6ff3b3bd % 4);
  assert.is(shardOf('agent-1', 7), 0x6ff3b3bd % 7);
  assert.is(shardOf('anything', 1), 0);
  const counts = new Array<number>(4).fill(0);
  for (let i = 0; i < 4000; i++) {
    const s = shardOf(`edge-${i}`, 4);
    assert.ok(s >= 0 && s < 4);
    assert.is(shardOf(`edge-${i}`, 4), s, 'stable');
    counts[s]!++;
  }
  // Each of 4 shards gets 1,000 ± a few standard deviations (σ ≈ 27).
  for (const c of counts) assert.ok(c > 850 && c < 1150, `shard sizes ${counts}`);
  for (const bad of [0, MAX_SHARDS + 1, 1.5, NaN]) assert.throws(() => shardOf('a', bad), /shards must be an integer 1…256/);
});

test('parseShardSpec takes K/S with 0 ≤ K < S, 2 ≤ S ≤ 256', () => {
  assert.equal(parseShardSpec('0/2'), { shard: 0, shards: 2 });
  assert.equal(parseShardSpec(' 3/4 '), { shard: 3, shards: 4 });
  for (const bad of ['4/4', '0/1', '1/0', '-1/4', '01/4', '1/257', '1', '1/2/3', 'a/b', '']) assert.is(parseShardSpec(bad), undefined, bad);
});

test('shard topics: built, parsed back, and routed only for their own shard and agent', () => {
  assert.is(T.shardUpdate(2, 'a1'), 'icosfl/v1/fed-1/shard-update/2/a1');
  assert.is(T.shardUpdateFilter(2), 'icosfl/v1/fed-1/shard-update/2/+');
  assert.is(T.partial(1), 'icosfl/v1/fed-1/partial/1');
  assert.equal(parseTopic(T.shardUpdate(2, 'a1')), { federation: 'fed-1', kind: 'shard-update', shard: 2, agent: 'a1' });
  assert.equal(parseTopic(T.partial(1)), { federation: 'fed-1', kind: 'partial', shard: 1 });
  for (const bad of ['icosfl/v1/fed-1/shard-update/256/a1', 'icosfl/v1/fed-1/shard-update/02/a1', 'icosfl/v1/fed-1/partial/x', 'icosfl/v1/fed-1/shard-update/1']) assert.is(parseTopic(bad), undefined, bad);
  assert.throws(() => T.partial(MAX_SHARDS), /shard must be an integer 0…255/);

  assert.is(routeMismatch(T.shardUpdate(2, 'edge.node_7'), SHARDED_UPDATE, 'fed-1'), undefined);
  assert.is(routeMismatch(T.shardUpdate(1, 'edge.node_7'), SHARDED_UPDATE, 'fed-1'), 'wrong-topic', 'another shard');
  assert.is(routeMismatch(T.update('edge.node_7'), SHARDED_UPDATE, 'fed-1'), 'wrong-topic', 'a sharded update on the unsharded topic');
  assert.is(routeMismatch(T.shardUpdate(2, 'edge.node_7'), UPDATE, 'fed-1'), 'wrong-topic', 'an unsharded update on a shard topic');
  assert.is(routeMismatch(T.shardUpdate(2, 'a2'), SHARDED_UPDATE, 'fed-1'), 'agent-mismatch');
  assert.is(routeMismatch(T.partial(1), PARTIAL, 'fed-1'), undefined);
  assert.is(routeMismatch(T.partial(2), PARTIAL, 'fed-1'), 'wrong-topic');
  assert.is(routeMismatch(T.update('a1'), PARTIAL, 'fed-1'), 'wrong-topic');
});

test.run();
