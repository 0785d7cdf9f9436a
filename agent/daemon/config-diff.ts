import type { AgentConfig } from '../config/schema.js';
import { roundedCapacity } from '../../native/ring.js';
import { describeRingMigration, planRingMigration } from '../sampler/open-ring.js';

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

/**
 * What a restart will do with each restart-only change, in words for the reload's log line and
 * `status` (last_reload): above all what happens to the ring's history when its layout changes
 * (open-ring.ts migrates it). `ringSize`: the samples the running ring holds.
 */
export function restartEffects(before: AgentConfig, after: AgentConfig, ringSize: number): string[] {
  const out: string[] = [];
  const a = before.sampler;
  const b = after.sampler;
  const changed: string[] = [];
  if (a.ring_capacity !== b.ring_capacity) changed.push(`sampler.ring_capacity ${a.ring_capacity} → ${b.ring_capacity}`);
  if (a.metrics.join(',') !== b.metrics.join(',')) changed.push(`sampler.metrics [${a.metrics.join(', ')}] → [${b.metrics.join(', ')}]`);
  if (changed.length > 0) {
    const plan = planRingMigration({ capacity: roundedCapacity(a.ring_capacity), channels: a.metrics.length, schemaTag: a.metrics.join(','), held: ringSize }, b.metrics, b.ring_capacity);
    const same = plan.fromCapacity === plan.toCapacity && a.metrics.join(',') === b.metrics.join(',');
    out.push(`${changed.join(', ')}: ${same ? `the ring file does not change (both capacities round up to ${plan.toCapacity})` : describeRingMigration(plan)}`);
  }
  const dirs: Array<[string, string, string, string]> = [
    ['agent.state_dir', before.agent.state_dir, after.agent.state_dir, 'the ring and model files are opened there; nothing is moved from the old directory'],
    ['agent.runtime_dir', before.agent.runtime_dir, after.agent.runtime_dir, 'the control socket moves there'],
    ['sampler.proc_root', a.proc_root, b.proc_root, 'the collectors read from there'],
    ['sampler.sys_root', a.sys_root, b.sys_root, 'the collectors read from there'],
  ];
  for (const [key, x, y, what] of dirs) if (x !== y) out.push(`${key} ${x} → ${y}: ${what}`);
  if (a.replay_file !== b.replay_file || a.replay_history !== b.replay_history || a.replay_hold !== b.replay_hold) out.push('sampler.replay_*: a restart starts the replay again with the new settings');
  return out;
}
