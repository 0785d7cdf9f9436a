import { ID_PATTERN } from './messages.js';
import { TOPIC_ROOT, type TopicKind } from './topics.js';

/**
 * Who may publish and subscribe what: the one statement of the federation's broker ACL. The
 * embedded broker's authorizer (coordinator/broker/) applies it, and the Mosquitto ACL file
 * (deploy/mosquitto/acl, scripts/gen-mosquitto-acl.mjs) is written from it, so both brokers
 * grant the same. A client's identity is the CN of its certificate (or its username):
 *
 *   coordinator   write round, global/+, partial/+      read update/+, ack/+, presence/+, shard-update/+/+, partial/+
 *   agent <id>    write update/<id>, ack/<id>,          read round, global/+
 *                 presence/<id> (its will too),
 *                 shard-update/+/<id>
 *
 * An agent reads no ack topic (acks go agent → coordinator only) and no other agent's topic.
 * Anything not granted is refused; `$SYS`, `#` and other wildcard-first filters fall outside
 * every grant. Retained publishes are a broker guard (embedded) or outside what a Mosquitto 2.0
 * ACL file can say (docs/tls.md).
 */
export const COORDINATOR_IDENTITY = 'icosfl-coordinator';

export type AclRole = 'coordinator' | 'agent';
export type AclAccess = 'read' | 'write';

export interface AclRule {
  role: AclRole;
  access: AclAccess;
  kind: TopicKind;
  /** Per-agent topics: the agent's own (`<kind>/<id>`) rather than every agent's (`<kind>/+`). */
  own?: true;
}

export const ACL_RULES: readonly AclRule[] = [
  { role: 'coordinator', access: 'write', kind: 'round' },
  { role: 'coordinator', access: 'write', kind: 'global' },
  { role: 'coordinator', access: 'read', kind: 'update' },
  { role: 'coordinator', access: 'read', kind: 'ack' },
  { role: 'coordinator', access: 'read', kind: 'presence' },
  // Sharded rounds: aggregator workers (the coordinator's identity) read their shard's updates and publish partial sums to the leader.
  { role: 'coordinator', access: 'read', kind: 'shard-update' },
  { role: 'coordinator', access: 'write', kind: 'partial' },
  { role: 'coordinator', access: 'read', kind: 'partial' },
  { role: 'agent', access: 'read', kind: 'round' },
  { role: 'agent', access: 'read', kind: 'global' },
  { role: 'agent', access: 'write', kind: 'update', own: true },
  { role: 'agent', access: 'write', kind: 'ack', own: true },
  { role: 'agent', access: 'write', kind: 'presence', own: true },
  { role: 'agent', access: 'write', kind: 'shard-update', own: true },
];

export interface AclIdentity {
  role: AclRole;
  /** The CN (or username): the agent id for an agent. */
  name: string;
}

/** The identity a certificate CN or username stands for; undefined when it can be neither. */
export function aclIdentity(name: string, coordinator: string = COORDINATOR_IDENTITY): AclIdentity | undefined {
  if (!ID_PATTERN.test(name)) return undefined;
  return { role: name === coordinator ? 'coordinator' : 'agent', name };
}

/**
 * A rule as a topic filter. `federation` is one federation's id or '+' (any on this broker);
 * `self` is the agent id, or Mosquitto's '%u' when writing the ACL file.
 */
export function ruleFilter(rule: AclRule, federation: string, self: string): string {
  const prefix = `${TOPIC_ROOT}/${federation}/${rule.kind}`;
  if (rule.kind === 'round') return prefix;
  // shard-update/<shard>/<agent>: any shard, the agent's own.
  if (rule.kind === 'shard-update') return `${prefix}/+/${rule.own ? self : '+'}`;
  return `${prefix}/${rule.own ? self : '+'}`;
}

/** The filters `identity` may `access` in `federation` ('+': any). */
export function grantedFilters(identity: AclIdentity, access: AclAccess, federation = '+'): string[] {
  return ACL_RULES.filter((r) => r.role === identity.role && r.access === access).map((r) => ruleFilter(r, federation, identity.name));
}

/** MQTT matching of a topic name (no wildcards) against a filter [MQTT-4.7]. */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && !filter.startsWith('$')) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Every topic `filter` can match is matched by `grant` (a subscription no wider than the grant). */
export function filterWithin(grant: string, filter: string): boolean {
  const g = grant.split('/');
  const f = filter.split('/');
  for (let i = 0; i < g.length; i++) {
    if (g[i] === '#') return true;
    if (i >= f.length || f[i] === '#') return false;
    if (g[i] === '+') continue;
    if (f[i] !== g[i]) return false; // a '+' in the filter reaches past a literal grant level
  }
  return g.length === f.length;
}

export function mayPublish(identity: AclIdentity, topic: string, federation = '+'): boolean {
  return grantedFilters(identity, 'write', federation).some((g) => topicMatches(g, topic));
}

export function maySubscribe(identity: AclIdentity, filter: string, federation = '+'): boolean {
  return grantedFilters(identity, 'read', federation).some((g) => filterWithin(g, filter));
}

/**
 * The rules as a Mosquitto 2.0 acl_file. Its `user` block is the coordinator's; `pattern` lines
 * apply to every client with `%u` its username, which `use_identity_as_username` sets to the
 * certificate's CN. Mosquitto applies patterns to the coordinator too: that adds only writes to
 * per-agent topics named after the coordinator, which no agent id may be (gen-certs.sh).
 */
export function mosquittoAcl(opts: { federation?: string; coordinator?: string } = {}): string {
  const federation = opts.federation ?? '+';
  const coordinator = opts.coordinator ?? COORDINATOR_IDENTITY;
  if (federation !== '+' && !ID_PATTERN.test(federation)) throw new RangeError(`federation '${federation}' must be '+' or 1–64 of [A-Za-z0-9._-]`);
  if (!ID_PATTERN.test(coordinator)) throw new RangeError(`coordinator identity '${coordinator}' must be 1–64 of [A-Za-z0-9._-]`);
  const lines = (role: AclRole, keyword: 'topic' | 'pattern', self: string) =>
    ACL_RULES.filter((r) => r.role === role).map((r) => `${keyword} ${r.access} ${ruleFilter(r, federation, self)}`);
  return [
    '# icosfl broker ACL for Mosquitto 2.0 (acl_file). Generated from common/protocol/acl.ts by',
    '# scripts/gen-mosquitto-acl.mjs: edit the rules there, not here (a test compares the two).',
    '# No line before the first `user` line: those would apply to anonymous clients, which get nothing.',
    '',
    `user ${coordinator}`,
    ...lines('coordinator', 'topic', coordinator),
    '',
    '# Every client by its certificate CN (%u): an agent writes only its own topics, reads round and global.',
    ...lines('agent', 'pattern', '%u'),
    '',
  ].join('\n');
}
