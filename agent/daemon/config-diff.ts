import type { AgentConfig } from '../config/schema.js';

/**
 * Which config changes SIGHUP applies to the running daemon and which need a restart.
 * Live: agent.log_level, sampler.interval_ms, every prometheus.* key (the endpoint is reopened)
 * and every trainer.*, federation.* and privacy.* key (the training or federation job is restarted
 * with the new section).
 * Restart: the directories (the ring, lock and socket live there), sampler.metrics and
 * sampler.ring_capacity (they fix the ring file's layout), the /proc and /sys roots (the
 * collectors are built for them), and sampler.replay_* (the worker reads the replay file and
 * sends its history once, at start).
 */
const LIVE = new Set(['agent.log_level', 'sampler.interval_ms']);
const LIVE_SECTIONS = new Set(['prometheus', 'trainer', 'federation', 'privacy']);

export interface ConfigDiff {
  live: string[];
  restart: string[];
}

export function diffConfig(before: AgentConfig, after: AgentConfig): ConfigDiff {
  const out: ConfigDiff = { live: [], restart: [] };
  for (const section of ['agent', 'sampler', 'prometheus', 'trainer', 'federation', 'privacy'] as const) {
    const a = before[section] as Record<string, unknown>;
    const b = after[section] as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (JSON.stringify(a[key]) === JSON.stringify(b[key])) continue;
      const dotted = `${section}.${key}`;
      (LIVE.has(dotted) || LIVE_SECTIONS.has(section) ? out.live : out.restart).push(dotted);
    }
  }
  return out;
}
