import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ACL_RULES, aclIdentity, filterWithin, grantedFilters, mayPublish, maySubscribe, mosquittoAcl, topicMatches } from '../../../common/protocol/acl.js';
import { federationTopics } from '../../../common/protocol/topics.js';
import { REPO_ROOT } from '../../helpers/paths.js';

// acl.ts: the rules each side keeps, the matching, and the Mosquitto file generated from them.
const T = federationTopics('fed');
const agentA = aclIdentity('agent-a')!;
const coordinator = aclIdentity('icosfl-coordinator')!;

test('identities: the coordinator CN (default or configured) is the coordinator, any other id an agent, a non-id nothing', () => {
  assert.equal(agentA, { role: 'agent', name: 'agent-a' });
  assert.equal(coordinator, { role: 'coordinator', name: 'icosfl-coordinator' });
  assert.equal(aclIdentity('boss', 'boss'), { role: 'coordinator', name: 'boss' });
  assert.is(aclIdentity('icosfl-coordinator', 'boss')!.role, 'agent');
  for (const bad of ['', 'a/b', '+', '#', 'x'.repeat(65), 'CN with space']) assert.is(aclIdentity(bad), undefined, bad);
});

test('an agent publishes only its own update, ack and presence; reads only round and global', () => {
  for (const topic of [T.update('agent-a'), T.ack('agent-a'), T.presence('agent-a')]) assert.ok(mayPublish(agentA, topic), topic);
  for (const topic of [T.update('agent-b'), T.ack('agent-b'), T.presence('agent-b'), T.round, T.global(0), '$SYS/broker/x', 'other/topic', `${T.prefix}/update/agent-a/x`]) {
    assert.not.ok(mayPublish(agentA, topic), topic);
  }
  for (const filter of [T.round, T.globalFilter, T.global(3)]) assert.ok(maySubscribe(agentA, filter), filter);
  for (const filter of [T.update('agent-b'), T.updateFilter, T.ack('agent-a'), T.ackFilter, T.presenceFilter, '#', '+/#', 'icosfl/#', 'icosfl/v1/+/#', `${T.prefix}/+`, `${T.prefix}/#`, '$SYS/#', `${T.prefix}/global/#`]) {
    assert.not.ok(maySubscribe(agentA, filter), filter);
  }
});

test('the coordinator publishes round and global; reads updates, acks and presence of every agent', () => {
  for (const topic of [T.round, T.global(0), T.global(12)]) assert.ok(mayPublish(coordinator, topic), topic);
  for (const topic of [T.update('agent-a'), T.presence('agent-a'), '$SYS/x']) assert.not.ok(mayPublish(coordinator, topic), topic);
  for (const filter of [T.updateFilter, T.ackFilter, T.presenceFilter, T.update('agent-a')]) assert.ok(maySubscribe(coordinator, filter), filter);
  for (const filter of ['#', T.round, `${T.prefix}/#`, '$SYS/#']) assert.not.ok(maySubscribe(coordinator, filter), filter);
});

test('a federation-scoped ACL grants nothing in another federation', () => {
  const other = federationTopics('other');
  assert.ok(mayPublish(agentA, T.update('agent-a'), 'fed'));
  assert.not.ok(mayPublish(agentA, other.update('agent-a'), 'fed'));
  assert.not.ok(maySubscribe(agentA, other.round, 'fed'));
  assert.ok(maySubscribe(agentA, other.round), "'+' (the default) is every federation");
  assert.equal(grantedFilters(agentA, 'write', 'fed'), [T.update('agent-a'), T.ack('agent-a'), T.presence('agent-a'), 'icosfl/v1/fed/shard-update/+/agent-a']);
});

test("sharded rounds: an agent publishes on any shard's topic under its own id only; the coordinator's identity reads shards and carries partial sums", () => {
  const coordinator = { role: 'coordinator' as const, name: 'icosfl-coordinator' };
  assert.ok(mayPublish(agentA, T.shardUpdate(3, 'agent-a')));
  assert.not.ok(mayPublish(agentA, T.shardUpdate(3, 'agent-b')));
  assert.not.ok(mayPublish(agentA, T.partial(3)));
  assert.not.ok(maySubscribe(agentA, T.shardUpdateFilter(3)));
  assert.ok(maySubscribe(coordinator, T.shardUpdateFilter(3)));
  assert.ok(mayPublish(coordinator, T.partial(3)));
  assert.ok(maySubscribe(coordinator, T.partialFilter));
  assert.not.ok(mayPublish(coordinator, T.shardUpdate(3, 'agent-a')));
});

test('topicMatches and filterWithin follow MQTT matching', () => {
  assert.ok(topicMatches('a/+/c', 'a/b/c'));
  assert.ok(topicMatches('a/#', 'a/b/c'));
  assert.not.ok(topicMatches('a/+', 'a/b/c'));
  assert.not.ok(topicMatches('#', '$SYS/x'), "a wildcard does not reach '$' topics");
  assert.ok(filterWithin('a/+/c', 'a/b/c'));
  assert.ok(filterWithin('a/+/c', 'a/+/c'));
  assert.not.ok(filterWithin('a/b/c', 'a/+/c'), 'a wildcard reaches past a literal grant');
  assert.not.ok(filterWithin('a/+/c', 'a/#'));
  assert.ok(filterWithin('a/#', 'a/b/#'));
});

test('no rule lets an agent write a topic the coordinator only reads from others, and every rule names a topic kind once per role and access', () => {
  const seen = new Set(ACL_RULES.map((r) => `${r.role} ${r.access} ${r.kind}`));
  assert.is(seen.size, ACL_RULES.length);
  assert.ok(ACL_RULES.filter((r) => r.role === 'agent' && r.access === 'write').every((r) => r.own), 'agents write their own topics only');
});

test('deploy/mosquitto/acl is what mosquittoAcl() writes from the rules (regenerate: node scripts/gen-mosquitto-acl.mjs --out deploy/mosquitto/acl)', () => {
  assert.fixture(readFileSync(join(REPO_ROOT, 'deploy', 'mosquitto', 'acl'), 'utf8'), mosquittoAcl());
});

test('the generated file: nothing before the first user line but comments, one line per rule, patterns keyed on %u', () => {
  const lines = mosquittoAcl({ federation: 'fed', coordinator: 'boss' }).split('\n');
  const firstUser = lines.findIndex((l) => l.startsWith('user '));
  assert.is(lines[firstUser], 'user boss');
  assert.ok(lines.slice(0, firstUser).every((l) => l === '' || l.startsWith('#')), 'a topic line before `user` would apply to anonymous clients');
  const rules = lines.filter((l) => l.startsWith('topic ') || l.startsWith('pattern '));
  assert.is(rules.length, ACL_RULES.length);
  assert.ok(rules.includes('pattern write icosfl/v1/fed/update/%u'));
  assert.ok(rules.includes('topic read icosfl/v1/fed/update/+'));
  assert.not.ok(rules.some((l) => l.endsWith(' #') || l.includes('$SYS')));
  assert.throws(() => mosquittoAcl({ federation: 'a/b' }), /federation 'a\/b' must be/);
  assert.throws(() => mosquittoAcl({ coordinator: '#' }), /coordinator identity '#' must be/);
});

test.run();
