import { z } from 'zod';
import { brokerSecurityProblem } from '../../common/config/broker-security.js';
import { LOG_FORMATS, type LogFormat } from '../../common/config/log-level.js';
import { DEFAULT_METRICS, METRICS } from '../collectors/index.js';
import { trainerConfigSchema } from '../trainer/config.js';

/**
 * The agent's configuration: `/etc/icosfl/agent.toml`, overridable by environment variables
 * (`ICOSFL_<SECTION>_<KEY>`) and flags (see load.ts). Every key has a default, so an absent file is
 * a working setup; unknown keys are errors (a typo must not silently fall back to a default).
 *
 * DEFAULTS is the one visible object of defaults; what each key means is its `.describe()` text
 * below (check-config --help and docs/CONFIG.md print them). Two defaults depend on systemd: `state_dir` is
 * `$STATE_DIRECTORY` when the unit sets `StateDirectory=`, `runtime_dir` is `$RUNTIME_DIRECTORY`
 * (else `<state_dir>/run`); both are resolved in load.ts so this object stays a constant.
 */

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const DEFAULTS = {
  agent: {
    state_dir: '',
    runtime_dir: '',
    log_level: '' as (typeof LOG_LEVELS)[number] | '',
    /** auto (readable on a terminal, JSON under journald or into a pipe), json or pretty. Empty = $LOG_FORMAT, else auto. */
    log_format: '' as LogFormat | '',
  },
  sampler: {
    // 1 s resolves the spikes a 5-step forecast should see.
    interval_ms: 1000,
    metrics: [...DEFAULT_METRICS] as string[],
    ring_capacity: 86_400,
    proc_root: '/proc',
    sys_root: '/sys',
    replay_file: '',
    replay_history: 0.8,
    replay_hold: false,
  },
  federation: {
    enabled: false,
    broker: 'mqtt://127.0.0.1:1883',
    federation_id: '',
    keys: '/etc/icosfl/agent.json',
    /** The next key epoch's agent.json (`keys rotate`), picked up while running. Empty: agent-next.json beside keys. */
    next_keys: '',
    agent_id: '',
    codec: 'ckks' as 'ckks' | 'plaintext',
    presence_interval_s: 30,
    reconnect_min_ms: 500,
    reconnect_max_ms: 30_000,
    /**
     * The coordinator's public signing key (coordinator-signing.pub from `keys init`), pinned. Set:
     * announcements and globals must carry its signature, and this agent signs what it sends with
     * its own key (signing_key), which the coordinator must have enrolled. Empty: no signatures.
     */
    coordinator_key: '',
    /** This agent's Ed25519 signing key, created on first use (mode 0600). Empty: <state_dir>/agent-signing.key. */
    signing_key: '',
    /** TLS and credentials (docs/tls.md); paths relative to the config file's directory. */
    ca: '',
    cert: '',
    key: '',
    username: '',
    password_file: '',
    allow_insecure: false,
  },
  prometheus: {
    // Off by default: nothing listens unless asked.
    enabled: false,
    host: '127.0.0.1',
    port: 9464,
  },
  /**
   * Differential privacy of what the agent sends (agent/federation/privacy.ts; README
   * "Differential privacy"; docs/decisions.md D9 for the defaults' cost in accuracy). Agent-level:
   * each update, and each validation loss it reports, is clipped and noised on its own. At the
   * defaults one round alone is ε 0.74, 100 rounds ε 9.84 (δ 1e-5, RDP composition; 8.60 of it
   * the updates', D9, the rest the losses', D17), and the budget of 10 lasts 102 rounds.
   */
  privacy: {
    /** Off by default: DP costs accuracy (D5), and a federation decides it for all its agents alike. */
    enabled: false,
    /** σ: the noise's standard deviation is σ × the clip bound, per coordinate. */
    noise_multiplier: 6,
    /**
     * L2 bound of a FedAvg update's change from the round's base model. 0.5 keeps σ × bound = 3
     * well inside the CKKS range (|w| ≤ 16) and is near the changes' norm at the default model (D5).
     */
    clip_norm: 0.5,
    /** L2 bound of the ridge statistics (the mean ΦᵀΦ and ΦᵀY vector, packed as sent). */
    ridge_clip_norm: 0.5,
    delta: 1e-5,
    /** The agent stops sending updates when the next round would take ε above this. */
    epsilon_budget: 10,
    /**
     * Probability the agent takes part in a round, drawn by the agent itself each round; the
     * accountant credits the subsampling. 1 = every round (the coordinator samples no agents).
     */
    sampling_rate: 1,
    /**
     * σ_l of the reported validation losses (common/privacy/losses.ts): each gets noise of σ_l × loss_clip
     * × √(losses in the round). 12 adds ε 1.24 over 100 rounds to the updates' 8.60 (D17).
     */
    loss_noise_multiplier: 12,
    /** Reported relative losses are clipped to [0, loss_clip]: model selection caps them at 2 anyway. */
    loss_clip: 2,
  },
};

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

export const agentConfigSchema = z
  .object({
    agent: z
      .object({
        state_dir: z.string().default(DEFAULTS.agent.state_dir).describe('Ring, models and keys. Empty: $STATE_DIRECTORY (systemd StateDirectory=), else /var/lib/icosfl.'),
        runtime_dir: z.string().default(DEFAULTS.agent.runtime_dir).describe('The control socket agent.sock (used by `icosfl-agent status`). Empty: $RUNTIME_DIRECTORY, else <state_dir>/run.'),
        log_level: z.union([z.enum(LOG_LEVELS), z.literal('')]).default(DEFAULTS.agent.log_level).describe('Log level. Empty: $LOG_LEVEL, else info.'),
        log_format: z.union([z.enum(LOG_FORMATS), z.literal('')]).default(DEFAULTS.agent.log_format).describe('auto: readable lines on a terminal (colour unless $NO_COLOR), JSON under journald or into a pipe or file; json; pretty. Empty: $LOG_FORMAT, else auto.'),
      })
      .strict()
      .default({})
      .describe('Where the agent keeps its state and socket, and how much it logs.'),
    sampler: z
      .object({
        interval_ms: z.number().int().min(50).max(3_600_000).default(DEFAULTS.sampler.interval_ms).describe('One sample every interval, on a fixed drift-free cadence.'),
        metrics: z
          .array(z.string().min(1))
          .min(1)
          .refine((m) => new Set(m).size === m.length, 'must not name a metric twice')
          .default(DEFAULTS.sampler.metrics)
          .describe(`Data minimisation: only these metrics are collected and stored, in this order. Known: ${Object.keys(METRICS).join(', ')}. Changing the list starts a new ring; the old file is renamed aside.`),
        ring_capacity: z.number().int().min(16).max(1 << 26).default(DEFAULTS.sampler.ring_capacity).describe('Samples kept, rounded up to a power of two by the ring (86400 = one day at 1 s, about 4 MB).'),
        proc_root: z.string().min(1).default(DEFAULTS.sampler.proc_root).describe('Where /proc is read from (a fixture tree in tests).'),
        sys_root: z.string().min(1).default(DEFAULTS.sampler.sys_root).describe('Where /sys is read from (a fixture tree in tests).'),
        replay_file: z.string().default(DEFAULTS.sampler.replay_file).describe("Empty: sample this machine. A CSV path (relative: to the config file's directory): replay that trace instead, one column per metric (agent/sampler/replay-source.ts has the format; data/gcd/ ships real traces)."),
        replay_history: z.number().min(0).max(1).default(DEFAULTS.sampler.replay_history).describe("Fraction of the replay file's rows stored at start, so training can begin at once; the rest streams one row per interval."),
        replay_hold: z.boolean().default(DEFAULTS.sampler.replay_hold).describe('true: the streamed part of a replay waits until the federation job has installed its first federated model. Needs replay_history > 0.'),
      })
      .strict()
      .default({})
      .describe('What is sampled, how often, and how much is kept; or a trace replayed instead.'),
    federation: z
      .object({
        enabled: z.boolean().default(DEFAULTS.federation.enabled).describe("Take part in a federation (the coordinator's rounds) instead of training locally only."),
        broker: z.string().regex(/^(mqtts?|tcp|ssl|tls|wss?):\/\/[^\s]+$/, 'must be a broker URL such as mqtt://127.0.0.1:1883').default(DEFAULTS.federation.broker).describe("The MQTT broker the coordinator uses (its embedded one listens on 127.0.0.1:1883 by default)."),
        federation_id: z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 of [A-Za-z0-9._-]')]).default(DEFAULTS.federation.federation_id).describe("The federation's id. Empty: the key bundle's."),
        keys: z.string().min(1).default(DEFAULTS.federation.keys).describe("The federation's agent key bundle (secret key, mode 0600), from `icosfl-coordinator keys init`."),
        next_keys: z.string().default(DEFAULTS.federation.next_keys).describe("The next key epoch's agent.json (mode 0600) from `icosfl-coordinator keys rotate`, re-read (like keys) within presence_interval_s while the daemon runs; each round uses the bundle its announcement names. Empty: agent-next.json beside keys."),
        agent_id: z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 of [A-Za-z0-9._-]')]).default(DEFAULTS.federation.agent_id).describe("This agent's id; it names the agent's topics, so it must be unique in the federation. Empty: this host's name."),
        codec: z.enum(['ckks', 'plaintext']).default(DEFAULTS.federation.codec).describe("'ckks' encrypts every update; 'plaintext' sends weights in the clear, only for benchmarks that measure what encryption costs."),
        presence_interval_s: z.number().positive().max(3600).default(DEFAULTS.federation.presence_interval_s).describe('Seconds between the presence messages that tell the coordinator this agent is there.'),
        reconnect_min_ms: z.number().int().min(10).max(600_000).default(DEFAULTS.federation.reconnect_min_ms).describe('First wait before reconnecting to the broker; it doubles up to reconnect_max_ms.'),
        reconnect_max_ms: z.number().int().min(10).max(3_600_000).default(DEFAULTS.federation.reconnect_max_ms).describe('Longest wait between reconnection attempts.'),
        coordinator_key: z.string().default(DEFAULTS.federation.coordinator_key).describe("the coordinator's public signing key (coordinator-signing.pub), pinned: announcements and globals must carry its signature and this agent signs its messages; empty: no signatures"),
        signing_key: z.string().default(DEFAULTS.federation.signing_key).describe("this agent's Ed25519 signing key, created on first use (mode 0600); empty: <state_dir>/agent-signing.key"),
        ca: z.string().default(DEFAULTS.federation.ca).describe("PEM CA file the broker's certificate must chain to (ca.crt from scripts/gen-certs.sh); empty: the system's CAs. Needs an mqtts:// broker"),
        cert: z.string().default(DEFAULTS.federation.cert).describe("PEM client certificate whose CN is this agent's id (agents/<id>.crt from scripts/gen-certs.sh); empty: none"),
        key: z.string().default(DEFAULTS.federation.key).describe('Unencrypted PEM private key of cert, readable only by the agent (mode 0600)'),
        username: z.string().default(DEFAULTS.federation.username).describe("Broker username (the agent id, for the federation ACL); empty: none, or the certificate's CN"),
        password_file: z.string().default(DEFAULTS.federation.password_file).describe("File whose first line is username's password (mode 0600); a password is never written in this config"),
        allow_insecure: z.boolean().default(DEFAULTS.federation.allow_insecure).describe('true: allow a plain mqtt:// broker on another host (unencrypted, unauthenticated); warned at every start'),
      })
      .strict()
      .default({})
      .describe("Taking part in the coordinator's encrypted rounds."),
    prometheus: z
      .object({
        enabled: z.boolean().default(DEFAULTS.prometheus.enabled).describe('Serve the Prometheus text exposition at http://<host>:<port>/metrics.'),
        host: z.string().regex(LOOPBACK, 'must be a loopback address (127.x.x.x, ::1, localhost)').default(DEFAULTS.prometheus.host).describe('Address it listens on: loopback only; a remote scraper goes through a reverse proxy or an SSH tunnel.'),
        port: z.number().int().min(0).max(65535).default(DEFAULTS.prometheus.port).describe('Port it listens on.'),
      })
      .strict()
      .default({})
      .describe('The metrics endpoint; off unless enabled.'),
    trainer: trainerConfigSchema.default({}).describe('Periodic local training in the daemon (with [federation] enabled, the federation job trains with what the coordinator announces instead).'),
    privacy: z
      .object({
        enabled: z.boolean().default(DEFAULTS.privacy.enabled).describe('clip and noise every update this agent sends, and stop once the ε budget is spent'),
        noise_multiplier: z.number().positive().max(1000).default(DEFAULTS.privacy.noise_multiplier).describe('σ: Gaussian noise of standard deviation σ × the clip bound per coordinate'),
        clip_norm: z.number().positive().finite().default(DEFAULTS.privacy.clip_norm).describe("L2 bound of a FedAvg update's change from the round's base model"),
        ridge_clip_norm: z.number().positive().finite().default(DEFAULTS.privacy.ridge_clip_norm).describe('L2 bound of the packed ridge statistics (mean ΦᵀΦ and ΦᵀY)'),
        delta: z.number().positive().max(0.01).default(DEFAULTS.privacy.delta).describe('δ of the reported (ε, δ); well below 1 / the number of agents'),
        epsilon_budget: z.number().positive().max(1000).default(DEFAULTS.privacy.epsilon_budget).describe('the agent withholds its updates once the next round would take ε above this'),
        sampling_rate: z.number().positive().max(1).default(DEFAULTS.privacy.sampling_rate).describe('probability the agent takes part in a round (drawn by the agent; 1 = every round)'),
        loss_noise_multiplier: z.number().positive().max(1000).default(DEFAULTS.privacy.loss_noise_multiplier).describe('σ_l: each validation loss reported gets Gaussian noise of σ_l × loss_clip × √(losses reported that round); charged with the update'),
        loss_clip: z.number().positive().max(100).default(DEFAULTS.privacy.loss_clip).describe('reported relative losses are clipped to [0, loss_clip] before the noise (and clamped to it after)'),
      })
      .strict()
      .default({})
      .describe('Differential privacy of every update this agent sends to a federation (README: Differential privacy).'),
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
  agent: { state_dir: string; runtime_dir: string; log_level: (typeof LOG_LEVELS)[number]; log_format: LogFormat };
  /** The file read, or null when none existed and defaults apply. */
  source: string | null;
}
