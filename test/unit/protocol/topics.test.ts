import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Message } from '../../../common/protocol/messages.js';
import { TOPIC_ROOT, federationTopics, parseTopic, routeMismatch, streamOf } from '../../../common/protocol/topics.js';
import { ACK, ANNOUNCE, GLOBAL, PRESENCE, UPDATE } from './fixtures.js';

// topics.ts: the builders, the parser on good and bad topics, streams and the routing rule.

test('builders', () => {
  const t = federationTopics('fed-1');
  assert.is(TOPIC_ROOT, 'icosfl/v1');
  assert.is(t.prefix, 'icosfl/v1/fed-1');
  assert.is(t.round, 'icosfl/v1/fed-1/round');
  assert.is(t.global(0), 'icosfl/v1/fed-1/global/0');
  assert.is(t.global(65_535), 'icosfl/v1/fed-1/global/65535');
  assert.is(t.update('edge.node_7'), 'icosfl/v1/fed-1/update/edge.node_7');
  assert.is(t.ack('a1'), 'icosfl/v1/fed-1/ack/a1');
  assert.is(t.presence('a1'), 'icosfl/v1/fed-1/presence/a1');
  assert.is(t.globalFilter, 'icosfl/v1/fed-1/global/+');
  assert.is(t.updateFilter, 'icosfl/v1/fed-1/update/+');
  assert.is(t.ackFilter, 'icosfl/v1/fed-1/ack/+');
  assert.is(t.presenceFilter, 'icosfl/v1/fed-1/presence/+');
});

test('builders refuse ids that are not one topic level, and bad chunk indexes', () => {
  const range = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof RangeError && pattern.test((e as Error).message), String(pattern));
  for (const bad of ['a/b', 'a+', '#', 'a b', '', 'x'.repeat(65), 'é']) {
    range(() => federationTopics(bad), /federation id '.*' must be 1–64 of/);
    range(() => federationTopics('f').update(bad), /agent id '.*' must be/);
    range(() => federationTopics('f').ack(bad), /agent id/);
    range(() => federationTopics('f').presence(bad), /agent id/);
  }
  range(() => federationTopics('f').global(-1), /chunk index must be an integer ≥ 0, got -1/);
  range(() => federationTopics('f').global(1.5), /got 1.5/);
  range(() => federationTopics('f').global(NaN), /got NaN/);
});

test('parseTopic on every topic the builders make', () => {
  const t = federationTopics('fed-1');
  assert.equal(parseTopic(t.round), { federation: 'fed-1', kind: 'round' });
  assert.equal(parseTopic(t.global(0)), { federation: 'fed-1', kind: 'global', chunk: 0 });
  assert.equal(parseTopic(t.global(40)), { federation: 'fed-1', kind: 'global', chunk: 40 });
  assert.equal(parseTopic(t.global(65_535)), { federation: 'fed-1', kind: 'global', chunk: 65_535 });
  assert.equal(parseTopic(t.update('a.b-c_d')), { federation: 'fed-1', kind: 'update', agent: 'a.b-c_d' });
  assert.equal(parseTopic(t.ack('a1')), { federation: 'fed-1', kind: 'ack', agent: 'a1' });
  assert.equal(parseTopic(t.presence('a1')), { federation: 'fed-1', kind: 'presence', agent: 'a1' });
});

test('parseTopic: anything else is undefined', () => {
  for (const bad of [
    '',
    'icosfl',
    'icosfl/v1',
    'icosfl/v1/fed-1',
    'icosfl/v1/fed-1/round/x', // extra level
    'icosfl/v1/fed-1/round/',
    'icosfl/v1/fed-1/update/a1/x',
    'icosfl/v1/fed-1/global/0/1',
    'icosfl/v2/fed-1/round', // wrong root
    'icosfl/V1/fed-1/round',
    'x/v1/fed-1/round',
    '/icosfl/v1/fed-1/round',
    'icosfl/v1/fed+1/round', // bad federation id
    'icosfl/v1/#/round',
    'icosfl/v1//round',
    'icosfl/v1/fed-1/update', // per-agent kinds need the agent
    'icosfl/v1/fed-1/update/', // empty agent
    'icosfl/v1/fed-1/update/a b',
    'icosfl/v1/fed-1/ack/+',
    'icosfl/v1/fed-1/presence/#',
    'icosfl/v1/fed-1/update/' + 'x'.repeat(65),
    'icosfl/v1/fed-1/global', // chunk index forms
    'icosfl/v1/fed-1/global/',
    'icosfl/v1/fed-1/global/01',
    'icosfl/v1/fed-1/global/-1',
    'icosfl/v1/fed-1/global/1.5',
    'icosfl/v1/fed-1/global/1e3',
    'icosfl/v1/fed-1/global/0x1',
    'icosfl/v1/fed-1/global/1000000',
    'icosfl/v1/fed-1/global/a',
    'icosfl/v1/fed-1/global/ 1',
    'icosfl/v1/fed-1/announce', // the announce topic is 'round'
    'icosfl/v1/fed-1/weights/a1',
    'icosfl/v1/fed-1/round2',
  ]) {
    assert.is(parseTopic(bad), undefined, bad);
  }
});

test('streamOf: the global chunk topics are one stream, a per-sender topic its own', () => {
  const t = federationTopics('fed-1');
  assert.is(streamOf(t.global(0)), 'icosfl/v1/fed-1/global');
  assert.is(streamOf(t.global(17)), 'icosfl/v1/fed-1/global');
  assert.is(streamOf(federationTopics('other').global(3)), 'icosfl/v1/other/global');
  assert.is(streamOf(t.update('a1')), t.update('a1'));
  assert.is(streamOf(t.update('a2')), t.update('a2'));
  assert.is(streamOf(t.round), t.round);
  assert.is(streamOf('not/a/topic'), 'not/a/topic');
  assert.is(streamOf('icosfl/v1/fed-1/global/01'), 'icosfl/v1/fed-1/global/01', 'not a chunk topic: not the global stream');
});

test('routeMismatch: topic kind, federation, impersonation', () => {
  const t = federationTopics('fed-1');
  const fits: [string, Message][] = [
    [t.round, ANNOUNCE],
    [t.global(0), GLOBAL],
    [t.global(9), GLOBAL],
    [t.update(UPDATE.agent), UPDATE],
    [t.ack('a1'), ACK],
    [t.presence('a1'), PRESENCE],
  ];
  for (const [topic, m] of fits) assert.is(routeMismatch(topic, m, 'fed-1'), undefined, `${m.type} on ${topic}`);
  // Each type on every other kind's topic.
  for (const [topic] of fits) {
    for (const [own, m] of fits) {
      if (parseTopic(topic)!.kind === parseTopic(own)!.kind) continue;
      assert.is(routeMismatch(topic, m, 'fed-1'), 'wrong-topic', `${m.type} on ${topic}`);
    }
  }
  assert.is(routeMismatch('icosfl/v1/fed-1/updates/a1', UPDATE, 'fed-1'), 'wrong-topic');
  assert.is(routeMismatch('elsewhere', PRESENCE, 'fed-1'), 'wrong-topic');
  // Another federation: in the message, in the topic, or this end's.
  assert.is(routeMismatch(t.presence('a1'), { ...PRESENCE, federation: 'fed-2' }, 'fed-1'), 'wrong-federation');
  assert.is(routeMismatch(federationTopics('fed-2').presence('a1'), PRESENCE, 'fed-1'), 'wrong-federation');
  assert.is(routeMismatch(federationTopics('fed-2').round, { ...ANNOUNCE, federation: 'fed-2' }, 'fed-1'), 'wrong-federation');
  assert.is(routeMismatch(federationTopics('fed-2').round, { ...ANNOUNCE, federation: 'fed-2' }, 'fed-2'), undefined);
  // Sending as someone else.
  assert.is(routeMismatch(t.update('a2'), UPDATE, 'fed-1'), 'agent-mismatch');
  assert.is(routeMismatch(t.ack('a2'), ACK, 'fed-1'), 'agent-mismatch');
  assert.is(routeMismatch(t.presence('a2'), PRESENCE, 'fed-1'), 'agent-mismatch');
  assert.is(routeMismatch(t.presence('A1'), PRESENCE, 'fed-1'), 'agent-mismatch', 'ids are case-sensitive');
});

test.run();
