import { z } from 'zod';
import { brokerSecurityProblem } from '../../common/config/broker-security.js';
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
    /**
     * Empty: sample this machine. A path (relative: to the config file's directory): replay that
     * CSV instead (agent/sampler/replay-source.ts has the format; data/gcd/ ships real traces).
     */
    replay_file: '',
    /** Fraction of the file's rows stored at start, so training can begin at once; 0 = none. */
    replay_history: 0.8,
    /** true: the rest is streamed only once Sampler.releaseReplay() is called (by federation). */
    replay_hold: false,
  },
  federation: {
    /** Take part in a federation (the coordinator's rounds) instead of training locally only. */
    enabled: false,
    /** The broker the coordinator uses (its embedded one listens on 127.0.0.1:1883 by default). */
    broker: 'mqtt://127.0.0.1:1883',
    /** Empty: the key bundle's federation id. */
    federation_id: '',
    /** The federation's agent key bundle (secret key, mode 0600), from `icosfl-coordinator keys init`. */
    keys: '/etc/icosfl/agent.json',
    /** Empty: this host's name. It names the agent's topics, so it must be unique in the federation. */
    agent_id: '',
    /** 'plaintext' sends weights unencrypted: only for benchmarks that measure what encryption costs. */
    codec: 'ckks' as 'ckks' | 'plaintext',
    presence_interval_s: 30,
    reconnect_min_ms: 500,
    reconnect_max_ms: 30_000,
    /** TLS and credentials (docs/tls.md); paths relative to the config file's directory. */
    ca: '',
    cert: '',
    key: '',
    username: '',
    password_file: '',
    allow_insecure: false,
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
        replay_file: z.string().default(DEFAULTS.sampler.replay_file),
        replay_history: z.number().min(0).max(1).default(DEFAULTS.sampler.replay_history),
        replay_hold: z.boolean().default(DEFAULTS.sampler.replay_hold),
      })
      .strict()
      .default({}),
    federation: z
      .object({
        enabled: z.boolean().default(DEFAULTS.federation.enabled),
        broker: z.string().regex(/^(mqtts?|tcp|ssl|tls|wss?):\/\/[^\s]+$/, 'must be a broker URL such as mqtt://127.0.0.1:1883').default(DEFAULTS.federation.broker),
        federation_id: z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 of [A-Za-z0-9._-]')]).default(DEFAULTS.federation.federation_id),
        keys: z.string().min(1).default(DEFAULTS.federation.keys),
        agent_id: z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 of [A-Za-z0-9._-]')]).default(DEFAULTS.federation.agent_id),
        codec: z.enum(['ckks', 'plaintext']).default(DEFAULTS.federation.codec),
        presence_interval_s: z.number().positive().max(3600).default(DEFAULTS.federation.presence_interval_s),
        reconnect_min_ms: z.number().int().min(10).max(600_000).default(DEFAULTS.federation.reconnect_min_ms),
        reconnect_max_ms: z.number().int().min(10).max(3_600_000).default(DEFAULTS.federation.reconnect_max_ms),
        ca: z.string().default(DEFAULTS.federation.ca).describe("PEM CA file the broker's certificate must chain to (ca.crt from scripts/gen-certs.sh); empty: the system's CAs. Needs an mqtts:// broker"),
        cert: z.string().default(DEFAULTS.federation.cert).describe("PEM client certificate whose CN is this agent's id (agents/<id>.crt from scripts/gen-certs.sh); empty: none"),
        key: z.string().default(DEFAULTS.federation.key).describe('Unencrypted PEM private key of cert, readable only by the agent (mode 0600)'),
        username: z.string().default(DEFAULTS.federation.username).describe("Broker username (the agent id, for the federation ACL); empty: none, or the certificate's CN"),
        password_file: z.string().default(DEFAULTS.federation.password_file).describe("File whose first line is username's password (mode 0600); a password is never written in this config"),
        allow_insecure: z.boolean().default(DEFAULTS.federation.allow_insecure).describe('true: allow a plain mqtt:// broker on another host (unencrypted, unauthenticated); warned at every start'),
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
  // A held replay without history stores nothing until released, but the daemon is ready (and
  // starts the jobs that would release it) only after the first sample is stored.
  if (c.sampler.replay_file !== '' && c.sampler.replay_hold && c.sampler.replay_history === 0) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['sampler', 'replay_hold'],
      message: 'a held replay needs replay_history > 0: with no history nothing is stored until release, and the daemon waits for a first sample',
    });
  }
  const f = c.federation;
  const insecure = f.enabled ? brokerSecurityProblem(f.broker, f, f.allow_insecure, { urlKey: 'federation.broker', section: 'federation' }) : undefined;
  if (insecure) ctx.addIssue({ code: z.ZodIssueCode.custom, path: insecure.key.split('.'), message: insecure.message });
});

/** The parsed file before systemd-dependent defaults are resolved. */
export type RawAgentConfig = z.infer<typeof agentConfigSchema>;

/** What the daemon runs with: directories and log level resolved, plus where it came from. */
export interface AgentConfig extends RawAgentConfig {
  agent: { state_dir: string; runtime_dir: string; log_level: (typeof LOG_LEVELS)[number] };
  /** The file read, or null when none existed and defaults apply. */
  source: string | null;
}
