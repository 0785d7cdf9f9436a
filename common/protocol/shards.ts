import { createHash } from 'node:crypto';

/**
 * Which aggregator shard an agent's updates go to (docs/OPERATIONS.md, "Shards"): the first four
 * bytes of SHA-256 of its id, big-endian, modulo the shard count the round announcement names.
 * Stable across processes, versions and restarts, and the same rule at the agent (which topic it
 * publishes on), at the worker (which updates it takes) and at the leader (which agents a partial
 * sum may list). A hash rather than round-robin: every chunk of one update, and every round of
 * one agent, reaches the same worker.
 */
export const MAX_SHARDS = 256;

export function shardOf(agent: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) throw new RangeError(`shards must be an integer 1…${MAX_SHARDS}, got ${shards}`);
  if (shards === 1) return 0;
  return createHash('sha256').update(agent, 'utf8').digest().readUInt32BE(0) % shards;
}

/** `K/S` (worker K of S, 0 ≤ K < S, 2 ≤ S ≤ MAX_SHARDS); undefined when it is not one. */
export function parseShardSpec(text: string): { shard: number; shards: number } | undefined {
  const m = /^(0|[1-9][0-9]{0,2})\/([1-9][0-9]{0,2})$/.exec(text.trim());
  if (!m) return undefined;
  const shard = Number(m[1]);
  const shards = Number(m[2]);
  return shards >= 2 && shards <= MAX_SHARDS && shard < shards ? { shard, shards } : undefined;
}
