import { z } from 'zod';
import { DEFAULT_METRICS } from '../collectors/index.js';
import { trainerConfigSchema } from '../trainer/config.js';

/**
 * The agent's configuration: `/etc/icosfl/agent.toml`, overridable by environment variables
 * (`ICOSFL_<SECTION>_<KEY>`) and flags (see load.ts). Every key has a default, so an absent file is
 * a working setup; unknown keys are errors (a typo must not silently fall back to a default).
 *
 * DEFAULTS is the one visible object of defaults. Two depend on systemd: `state_dir` is
 * `$STATE_DIRECTORY` when the unit sets `StateDirectory=`, `runtime_dir` is `$RUNTIME_DIRECTORY`
 * (else `<state_dir>/run`); both are resolved in load.ts so this object stays a constant.
 */

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const DEFAULTS = {
  agent: {
    /** Ring, models and keys. Empty = $STATE_DIRECTORY, else /var/lib/icosfl. */
    state_dir: '',
    /** Control socket. Empty = $RUNTIME_DIRECTORY, else <state_dir>/run. */
    runtime_dir: '',
    /** Empty = $LOG_LEVEL, else 'info'. */
    log_level: '' as (typeof LOG_LEVELS)[number] | '',
  },
  sampler: {
    /** One sample every interval; 1 s resolves the spikes a 5-step forecast should see. */
    interval_ms: 1000,
    /**
     * Data minimisation: only these channels are collected and stored, in this order. Default:
     * the sources every Linux host has (cpu, memory, load, network, disk, filesystem; see
     * DEFAULT_METRICS in agent/collectors/index.ts).
     */
    metrics: [...DEFAULT_METRICS] as string[],
    /** Samples kept (rounded up to a power of two by the ring): 86 400 = one day at 1 s, ~4 MB. */
    ring_capacity: 86_400,
    proc_root: '/proc',
    sys_root: '/sys',
  },
  prometheus: {
    /** Off by default: nothing listens unless asked. */
    enabled: false,
    /** Loopback only; a remote scraper goes through a reverse proxy or an SSH tunnel. */
    host: '127.0.0.1',
    port: 9464,
  },
};

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

export const agentConfigSchema = z
  .object({
    agent: z
      .object({
        state_dir: z.string().default(DEFAULTS.agent.state_dir),
        runtime_dir: z.string().default(DEFAULTS.agent.runtime_dir),
        log_level: z.union([z.enum(LOG_LEVELS), z.literal('')]).default(DEFAULTS.agent.log_level),
      })
      .strict()
      .default({}),
    sampler: z
      .object({
        interval_ms: z.number().int().min(50).max(3_600_000).default(DEFAULTS.sampler.interval_ms),
        metrics: z
          .array(z.string().min(1))
          .min(1)
          .refine((m) => new Set(m).size === m.length, 'must not name a metric twice')
          .default(DEFAULTS.sampler.metrics),
        ring_capacity: z.number().int().min(16).max(1 << 26).default(DEFAULTS.sampler.ring_capacity),
        proc_root: z.string().min(1).default(DEFAULTS.sampler.proc_root),
        sys_root: z.string().min(1).default(DEFAULTS.sampler.sys_root),
      })
      .strict()
      .default({}),
    prometheus: z
      .object({
        enabled: z.boolean().default(DEFAULTS.prometheus.enabled),
        host: z.string().regex(LOOPBACK, 'must be a loopback address (127.x.x.x, ::1, localhost)').default(DEFAULTS.prometheus.host),
        port: z.number().int().min(0).max(65535).default(DEFAULTS.prometheus.port),
      })
      .strict()
      .default({}),
    trainer: trainerConfigSchema.default({}),
  })
  .strict();

/**
 * agentConfigSchema with its checks across sections (load.ts parses with this; overrides.ts reads
 * the plain object's shape).
 */
export const checkedAgentConfigSchema = agentConfigSchema.superRefine((c, ctx) => {
  // The daemon starts training once the ring holds this many samples (daemon.ts,
  // samplesForFirstRound): a ring that can never hold them would leave training waiting forever.
  const needed = c.trainer.min_samples + c.trainer.lookback + c.trainer.horizon - 1;
  if (c.trainer.enabled && needed > c.sampler.ring_capacity) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['trainer', 'min_samples'],
      message: `min_samples + lookback + horizon − 1 = ${needed} samples, more than sampler.ring_capacity (${c.sampler.ring_capacity}) holds: training would never start`,
    });
  }
});

/** The parsed file before systemd-dependent defaults are resolved. */
export type RawAgentConfig = z.infer<typeof agentConfigSchema>;

/** What the daemon runs with: directories and log level resolved, plus where it came from. */
export interface AgentConfig extends RawAgentConfig {
  agent: { state_dir: string; runtime_dir: string; log_level: (typeof LOG_LEVELS)[number] };
  /** The file read, or null when none existed and defaults apply. */
  source: string | null;
}
