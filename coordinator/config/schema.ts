import { z } from 'zod';
import { brokerSecurityProblem } from '../../common/config/broker-security.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../../common/config/log-level.js';
import { DEFAULT_CHUNK_BYTES } from '../../common/protocol/chunks.js';
import { DEFAULT_FEDERATION_MODEL, federationModelSchema, type FederationModel } from '../../common/protocol/federation-model.js';
import { ID_PATTERN } from '../../common/protocol/messages.js';
import { MAX_SHARDS } from '../../common/protocol/shards.js';

/**
 * The coordinator's configuration: `/etc/icosfl/coordinator.toml`, overridable by environment
 * variables (`ICOSFL_COORD_<SECTION>_<KEY>`) and `--set section.key=value` (see load.ts). Every
 * key has a default, so an absent file is a working setup (given a key bundle); unknown keys are
 * errors. DEFAULTS is the one visible object of defaults (what each key means is its `.describe()`
 * text below, printed by check-config --help and docs/CONFIG.md); `[model]` takes its defaults from
 * DEFAULT_FEDERATION_MODEL (common/protocol/federation-model.ts), the model simulate measures.
 */

/** `[model]` keys as written (snake_case) → the FederationModel field each one sets. */
export const MODEL_KEYS = {
  metrics: 'metrics',
  kind: 'kind',
  lookback: 'lookback',
  horizon: 'horizon',
  hidden_units: 'hiddenUnits',
  channel_independent: 'channelIndependent',
  batch_size: 'batchSize',
  learning_rate: 'learningRate',
  local_epochs: 'localEpochs',
  rounds: 'rounds',
  fine_tune_epochs: 'fineTuneEpochs',
  ridge_features: 'ridgeFeatures',
  mix_memory: 'mixMemory',
  validation_fraction: 'validationFraction',
  calibrate: 'calibrate',
  seed: 'seed',
  max_windows: 'maxWindows',
  min_windows: 'minWindows',
  dropout_rate: 'dropoutRate',
} as const satisfies Record<string, keyof FederationModel>;

export type ModelKey = keyof typeof MODEL_KEYS;
/** The `[model]` section: FederationModel with snake_case keys. */
export type ModelSection = { [K in ModelKey]: FederationModel[(typeof MODEL_KEYS)[K]] };

// Compile-time check that MODEL_KEYS covers every FederationModel field (a new field must get a key).
type Missing = Exclude<keyof FederationModel, (typeof MODEL_KEYS)[ModelKey]>;
const modelKeysComplete: [Missing] extends [never] ? true : Missing = true;
void modelKeysComplete;

function modelDefaults(): ModelSection {
  const out: Record<string, unknown> = {};
  for (const [snake, camel] of Object.entries(MODEL_KEYS)) {
    const v = DEFAULT_FEDERATION_MODEL[camel];
    out[snake] = Array.isArray(v) ? [...v] : v;
  }
  return out as ModelSection;
}

export const CODECS = ['ckks', 'plaintext'] as const;

export const DEFAULTS = {
  coordinator: {
    state_dir: '',
    runtime_dir: '',
    log_level: '' as LogLevel | '',
    keys: '/etc/icosfl/coordinator.json',
    /** The next key epoch's coordinator.json (`keys rotate`), picked up while running. Empty: coordinator-next.json beside keys. */
    next_keys: '',
    codec: 'ckks' as (typeof CODECS)[number],
    /**
     * coordinator-signing.key from `keys init` (Ed25519, 0600). Set: the coordinator signs its
     * announcements and globals and takes only messages signed by enrolled agents. Empty: nothing
     * is signed and anyone who may publish on the broker can speak as any agent (a warning says so).
     */
    signing_key: '',
    /** The enrolled agents' public keys (`agents enroll`). Empty: <state_dir>/enrolled-agents.json. */
    enrolled_agents: '',
    /** auto (readable on a terminal, JSON under journald or into a pipe), json or pretty. Empty: $LOG_FORMAT, else auto. */
    log_format: '' as LogFormat | '',
  },
  broker: {
    url: 'embedded',
    embedded_host: '127.0.0.1',
    embedded_port: 1883,
    client_id: 'icosfl-coordinator',
    // A quarter of EMQX's 1 MB default packet limit.
    chunk_bytes: DEFAULT_CHUNK_BYTES,
    /** TLS and credentials (docs/tls.md); paths relative to the config file's directory. */
    ca: '',
    cert: '',
    key: '',
    username: '',
    password_file: '',
    allow_insecure: false,
  },
  federation: {
    id: '',
    min_agents: 2,
    round_timeout_s: 120,
    ack_timeout_s: 60,
    round_interval_s: 2,
    session_interval_s: 3600,
    sessions: 0,
    // Agents say they are there every 30 s.
    presence_timeout_s: 90,
    resume_grace_s: 30,
    /** Per agent and round: an 11-metric ridge update is 2.7 MB, the update limit 64 MiB; three of those. */
    agent_bytes_per_round: 192 * 1024 * 1024,
    /** Per agent and round: one update and one ack, with room for resends after reconnects. */
    agent_messages_per_round: 16,
    shards: 0,
    partial_margin_s: 10,
  },
  http: {
    enabled: false,
    host: '127.0.0.1',
    port: 9465,
  },
  model: modelDefaults(),
};

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;
const BROKER_SCHEMES = ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'];
const DAY_S = 86_400;

function brokerUrlProblem(url: string): string | undefined {
  if (url === 'embedded') return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `must be 'embedded' or a broker URL such as mqtt://broker.example:1883, got '${url}'`;
  }
  if (!BROKER_SCHEMES.includes(u.protocol)) return `scheme '${u.protocol}' is not one of ${BROKER_SCHEMES.join(' ')}`;
  if (!u.hostname) return `names no host: '${url}'`;
  return undefined;
}

const seconds = (min: number, max: number, inclusiveMin = true) => {
  const base = z.number().finite();
  return (inclusiveMin ? base.min(min) : base.gt(min)).max(max);
};

function modelSectionSchema() {
  const shape: Record<string, z.ZodTypeAny> = {};
  for (const [snake, camel] of Object.entries(MODEL_KEYS)) shape[snake] = (federationModelSchema.shape[camel] as z.ZodTypeAny).default(DEFAULTS.model[snake as ModelKey]);
  return z.object(shape).strict();
}

export const coordinatorConfigSchema = z
  .object({
    coordinator: z
      .object({
        state_dir: z.string().default(DEFAULTS.coordinator.state_dir).describe('Snapshot, journal (a round\'s updates) and aggregates; one coordinator per directory. Empty: $STATE_DIRECTORY (systemd StateDirectory=), else /var/lib/icosfl-coordinator. Relative: to the config file\'s directory.'),
        runtime_dir: z.string().default(DEFAULTS.coordinator.runtime_dir).describe('The control socket coordinator.sock (used by `status`, `agents`, `rounds`). Empty: $RUNTIME_DIRECTORY, else <state_dir>/run.'),
        log_level: z.union([z.enum(LOG_LEVELS), z.literal('')]).default(DEFAULTS.coordinator.log_level).describe('Log level. Empty: $LOG_LEVEL, else info.'),
        keys: z.string().default(DEFAULTS.coordinator.keys).describe("The federation's coordinator.json from `icosfl-coordinator keys init` (parameters only; a bundle with the secret key is refused, exit 77)."),
        next_keys: z.string().default(DEFAULTS.coordinator.next_keys).describe("The next key epoch's coordinator.json from `icosfl-coordinator keys rotate`, re-read within a second while the service runs; rounds switch to it at the next session once federation.min_agents agents hold its key. Empty: coordinator-next.json beside keys."),
        codec: z.enum(CODECS).default(DEFAULTS.coordinator.codec).describe("'ckks': agents send CKKS ciphertexts and the coordinator only adds them; 'plaintext' lets the coordinator see every agent's weights, for benchmarks only (needs federation.id)."),
        signing_key: z.string().default(DEFAULTS.coordinator.signing_key).describe('coordinator-signing.key from `keys init` (Ed25519, mode 0600): sign announcements and globals and take only messages signed by enrolled agents; empty: $CREDENTIALS_DIRECTORY/coordinator-signing.key when systemd passed it (LoadCredential=), else no signatures (warned)'),
        enrolled_agents: z.string().default(DEFAULTS.coordinator.enrolled_agents).describe("the enrolled agents' public keys (`icosfl-coordinator agents enroll`); empty: <state_dir>/enrolled-agents.json"),
        log_format: z.union([z.enum(LOG_FORMATS), z.literal('')]).default(DEFAULTS.coordinator.log_format).describe('auto: readable lines on a terminal (colour unless $NO_COLOR), JSON under journald or into a pipe or file; json; pretty. Empty: $LOG_FORMAT, else auto.'),
      })
      .strict()
      .default({})
      .describe('Where the coordinator keeps its state and socket, its key bundle and codec.'),
    broker: z
      .object({
        url: z
          .string()
          .superRefine((u, ctx) => {
            const problem = brokerUrlProblem(u);
            if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
          })
          .default(DEFAULTS.broker.url).describe("'embedded': an MQTT 3.1.1 broker (aedes) in this process on embedded_host:embedded_port; else a broker URL such as mqtt://broker.example:1883 (Mosquitto, EMQX)."),
        embedded_host: z.string().min(1).default(DEFAULTS.broker.embedded_host).describe('Where the embedded broker listens: loopback unless TLS (ca, cert, key) is configured, which client certificates then authenticate.'),
        embedded_port: z.number().int().min(0).max(65_535).default(DEFAULTS.broker.embedded_port).describe('Port of the embedded broker; 0 takes a free port (logged, and shown by `status`).'),
        client_id: z.string().regex(ID_PATTERN, 'must be 1–64 of [A-Za-z0-9._-]').default(DEFAULTS.broker.client_id).describe("The coordinator's MQTT client id, unique on the broker."),
        chunk_bytes: z.number().int().min(4096).max(DEFAULT_CHUNK_BYTES).default(DEFAULTS.broker.chunk_bytes).describe("Payload bytes per MQTT message: messages are chunked below brokers' packet limits."),
        ca: z.string().default(DEFAULTS.broker.ca).describe("PEM CA file (ca.crt from scripts/gen-certs.sh). External broker: its certificate must chain to it (empty: the system's CAs). Embedded: client certificates must chain to it"),
        cert: z.string().default(DEFAULTS.broker.cert).describe("PEM certificate. External broker: the coordinator's client certificate (coordinator.crt, CN icosfl-coordinator). Embedded: the broker's server certificate (broker.crt); set, the embedded broker speaks mqtts:// only"),
        key: z.string().default(DEFAULTS.broker.key).describe('Unencrypted PEM private key of cert, readable only by the coordinator (mode 0600)'),
        username: z.string().default(DEFAULTS.broker.username).describe('External broker username; empty: none, or the certificate\'s CN'),
        password_file: z.string().default(DEFAULTS.broker.password_file).describe("File whose first line is username's password (mode 0600); a password is never written in this config"),
        allow_insecure: z.boolean().default(DEFAULTS.broker.allow_insecure).describe('true: allow a plain mqtt:// broker on another host (unencrypted, unauthenticated); warned at every start'),
      })
      .strict()
      .default({})
      .describe('The MQTT broker: embedded, or an external one.'),
    federation: z
      .object({
        id: z.union([z.literal(''), z.string().regex(ID_PATTERN, 'must be empty (the key bundle\'s id) or 1–64 of [A-Za-z0-9._-]')]).default(DEFAULTS.federation.id).describe("The federation's id. Empty: the key bundle's federationId; set: it must equal that id (a guard against mixed-up configs)."),
        min_agents: z.number().int().min(1).max(100_000).default(DEFAULTS.federation.min_agents).describe('Updates a round needs (quorum); a round is announced once this many agents are online.'),
        round_timeout_s: seconds(0, DAY_S, false).default(DEFAULTS.federation.round_timeout_s).describe('Seconds a round collects updates after its announcement.'),
        ack_timeout_s: seconds(0, DAY_S, false).default(DEFAULTS.federation.ack_timeout_s).describe('Seconds a round waits for acknowledgements of its global model.'),
        round_interval_s: seconds(0, DAY_S).default(DEFAULTS.federation.round_interval_s).describe('Pause between the rounds of a session.'),
        session_interval_s: seconds(0, 30 * DAY_S).default(DEFAULTS.federation.session_interval_s).describe('Pause between sessions.'),
        sessions: z.number().int().min(0).max(1_000_000).default(DEFAULTS.federation.sessions).describe('Sessions to run, then exit 0; 0 = forever.'),
        presence_timeout_s: seconds(0, DAY_S, false).default(DEFAULTS.federation.presence_timeout_s).describe('An agent not heard from for this long counts as offline (agents report every 30 s).'),
        resume_grace_s: seconds(0, 3600).default(DEFAULTS.federation.resume_grace_s).describe('Collection time a round in progress gets after a restart, so agents can resend.'),
        agent_bytes_per_round: z
          .number()
          .int()
          .min(64 * 1024)
          .max(2 ** 40)
          .default(DEFAULTS.federation.agent_bytes_per_round)
          .describe('bytes one agent may send per round (declared message sizes, counted before reassembly allocates); the excess is refused as rate-limited'),
        agent_messages_per_round: z
          .number()
          .int()
          .min(2)
          .max(1_000_000)
          .default(DEFAULTS.federation.agent_messages_per_round)
          .describe('update and ack messages one agent may send per round; the excess is refused as rate-limited before reassembly'),
        shards: z
          .number()
          .int()
          .min(0)
          .max(MAX_SHARDS)
          .default(DEFAULTS.federation.shards)
          .describe("Aggregator shards: 0 or 1, none (serve takes every update itself); S ≥ 2, agents publish to S shard topics, each summed by an `icosfl-coordinator aggregate --shard K/S` worker, and serve adds the workers' partial sums (needs codec 'ckks' and agents that know shards; docs/OPERATIONS.md)."),
        partial_margin_s: seconds(0, 3600)
          .default(DEFAULTS.federation.partial_margin_s)
          .describe("An aggregator worker publishes its shard's partial sum this long before the round's deadline at the latest (earlier, once as many of its agents have sent as the announcement expects on its shard), so it reaches serve in time."),
      })
      .strict()
      .default({})
      .describe('Rounds and sessions: quorum, timeouts, pauses.'),
    http: z
      .object({
        enabled: z.boolean().default(DEFAULTS.http.enabled).describe('Serve the Prometheus text exposition at http://<host>:<port>/metrics and the status page at /.'),
        host: z.string().regex(LOOPBACK, 'must be a loopback address (127.x.x.x, ::1, localhost)').default(DEFAULTS.http.host).describe('Address it listens on: loopback only; a remote scraper or browser goes through a reverse proxy or an SSH tunnel.'),
        port: z.number().int().min(0).max(65535).default(DEFAULTS.http.port).describe('Port it listens on; 0 takes a free port (logged, and shown by `status`).'),
      })
      .strict()
      .default({})
      .describe("The coordinator's metrics endpoint and status page (/, refreshed from /status.json; README \"Status page\"); off unless enabled."),
    model: modelSectionSchema().default({}).describe('What the federation trains, announced with every round (common/protocol/federation-model.ts; why each default: docs/decisions.md). A changed [model] ends the session in progress.'),
  })
  .strict();

/** The parsed layers before directories, the log level and the key path are resolved. */
export type RawCoordinatorConfig = Omit<z.infer<typeof coordinatorConfigSchema>, 'model'> & { model: ModelSection };

/** What `serve` runs with: directories, log level and key path resolved, the model as the protocol's FederationModel. */
export interface CoordinatorConfig extends Omit<RawCoordinatorConfig, 'coordinator'> {
  coordinator: Omit<RawCoordinatorConfig['coordinator'], 'log_level' | 'log_format'> & { log_level: LogLevel; log_format: LogFormat };
  /** `[model]` in the protocol's (camelCase) form, as announced to the agents. */
  federationModel: FederationModel;
  /** The file read, or null when none existed and defaults apply. */
  source: string | null;
  /** 'section.key' → where an override came from (environment variable or flag), for error messages. */
  origins: ReadonlyMap<string, string>;
}

/** coordinatorConfigSchema with its checks across sections (load.ts parses with this; overrides read the plain object's shape). */
export const checkedCoordinatorConfigSchema = coordinatorConfigSchema.superRefine((c, ctx) => {
  const b = c.broker;
  if (b.url === 'embedded') {
    // Without TLS the embedded broker authenticates no one: it may listen on this host only.
    const tls = b.cert !== '';
    if (!tls && !LOOPBACK.test(b.embedded_host)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['broker', 'embedded_host'], message: `must be a loopback address (127.x.x.x, ::1, localhost) unless the embedded broker speaks TLS: without it, it authenticates no one; set broker.ca, broker.cert and broker.key (scripts/gen-certs.sh) to listen on '${b.embedded_host}'` });
    }
    if (tls && b.ca === '') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['broker', 'ca'], message: 'must name the federation CA (ca.crt) when broker.cert makes the embedded broker speak TLS: client certificates are checked against it' });
    if (!tls && b.ca !== '') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['broker', 'cert'], message: "must name the embedded broker's certificate (broker.crt) and broker.key when broker.ca is set" });
    if (b.username !== '' || b.password_file !== '') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['broker', b.username !== '' ? 'username' : 'password_file'], message: 'is for an external broker: the coordinator reaches its embedded broker in-process, and the embedded broker identifies clients by certificate only' });
  } else {
    const problem = brokerSecurityProblem(b.url, b, b.allow_insecure, { urlKey: 'broker.url', section: 'broker' });
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, path: problem.key.split('.'), message: problem.message });
  }
  if (c.coordinator.codec === 'ckks' && c.coordinator.keys === '') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['coordinator', 'keys'], message: "must name the coordinator.json of `icosfl-coordinator keys init` when codec is 'ckks'" });
  }
  // Without a key bundle nothing else can say which federation this is.
  if (c.coordinator.codec === 'plaintext' && c.federation.shards > 1) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['federation', 'shards'], message: "must be 0 or 1 when coordinator.codec is 'plaintext' (a plaintext partial would be an average, not a sum)" });
  }
  if (c.federation.shards > 1 && c.federation.partial_margin_s >= c.federation.round_timeout_s) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['federation', 'partial_margin_s'], message: `must be below round_timeout_s (${c.federation.round_timeout_s}) when shards > 1: the workers would publish before collecting anything` });
  }
  if (c.coordinator.codec === 'plaintext' && c.federation.id === '') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['federation', 'id'], message: "must be set when coordinator.codec is 'plaintext' (there is no key bundle to take the id from)" });
  }
});
