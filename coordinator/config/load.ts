import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { COORDINATOR_SIGNING_KEY_FILE } from '../../common/crypto/signing-keys.js';
import { ZodError } from 'zod';
import { resolveLogFormat, resolveLogLevel } from '../../common/config/log-level.js';
import { mergeLayers } from '../../common/config/merge.js';
import { emptyOverrides, envOverrides, setOverrides } from '../../common/config/overrides.js';
import { configError, problemsOf } from '../../common/config/problems.js';
import { firstSystemdDir } from '../../common/config/systemd-dirs.js';
import { readTomlFile } from '../../common/config/toml-file.js';
import { parseFederationModel, type FederationModel } from '../../common/protocol/federation-model.js';
import { checkedCoordinatorConfigSchema, coordinatorConfigSchema, MODEL_KEYS, type CoordinatorConfig, type ModelSection, type RawCoordinatorConfig } from './schema.js';

/**
 * Loads the coordinator config: defaults < file < environment < flags, validated once by the
 * zod schema. Every error names the key and where its value came from (the file, the variable
 * or the flag) and what is allowed; the CLI maps CONFIG_* errors to exit code 78. The key
 * bundle is not read here (federation.ts checks federation.id against it).
 */
export const DEFAULT_CONFIG_PATH = '/etc/icosfl/coordinator.toml';
export const CONFIG_PATH_VARIABLE = 'ICOSFL_COORDINATOR_CONFIG';
/** A prefix of its own: the agent's ICOSFL_<SECTION>_ variables may be set on the same host. */
export const ENV_PREFIX = 'ICOSFL_COORD_';
const DEFAULT_STATE_DIR = '/var/lib/icosfl-coordinator';

export interface LoadOptions {
  /** Explicit file (--config); else $ICOSFL_COORDINATOR_CONFIG; else DEFAULT_CONFIG_PATH if it exists. */
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** `--set section.key=value` flags. */
  sets?: string[];
  /** The file tried when none is named; DEFAULT_CONFIG_PATH unless a test moves it. */
  defaultPath?: string;
}

const CAMEL_TO_SNAKE = new Map<string, string>(Object.entries(MODEL_KEYS).map(([snake, camel]) => [camel, snake]));

/** `[model]` as the protocol's FederationModel (the schema already checked every field). */
function toFederationModel(model: ModelSection, origins: ReadonlyMap<string, string>, file: string | null): FederationModel {
  const camel: Record<string, unknown> = {};
  for (const [snake, field] of Object.entries(MODEL_KEYS)) camel[field] = model[snake as keyof ModelSection];
  try {
    return parseFederationModel(camel);
  } catch (err) {
    if (!(err instanceof ZodError)) throw err;
    throw configError(problemsOf(err, origins, file, (path) => ['model', CAMEL_TO_SNAKE.get(String(path[0])) ?? String(path[0]), ...path.slice(1)].join('.')));
  }
}

/**
 * A path key as an absolute path: relative to the config file's directory when the file set it
 * (a config beside its keys and state works from any cwd), to the cwd when an override did.
 */
function pathOf(key: string, value: string, origins: ReadonlyMap<string, string>, file: string | null): string {
  const fromFile = file !== null && !origins.has(key);
  return resolve(fromFile ? dirname(file) : process.cwd(), value);
}

export function configPathOf(opts: LoadOptions): { path: string; explicit: boolean } {
  const env = opts.env ?? process.env;
  const named = opts.configPath ?? env[CONFIG_PATH_VARIABLE];
  return { path: resolve(named ?? opts.defaultPath ?? DEFAULT_CONFIG_PATH), explicit: named !== undefined };
}

export function loadCoordinatorConfig(opts: LoadOptions = {}): CoordinatorConfig {
  const env = opts.env ?? process.env;
  const { path, explicit } = configPathOf(opts);
  const file = readTomlFile(path, explicit);
  const source = file ? path : null;

  const overrides = emptyOverrides();
  envOverrides(env, { prefix: ENV_PREFIX, schema: coordinatorConfigSchema, unknownSections: 'report' }, overrides);
  setOverrides(opts.sets ?? [], coordinatorConfigSchema, overrides);

  const parsed = checkedCoordinatorConfigSchema.safeParse(mergeLayers(file ?? {}, overrides.values));
  if (!parsed.success) throw configError(problemsOf(parsed.error, overrides.origins, source));
  const raw = parsed.data as RawCoordinatorConfig;

  const o = overrides.origins;
  const c = raw.coordinator;
  const stateDir = c.state_dir ? pathOf('coordinator.state_dir', c.state_dir, o, source) : resolve(firstSystemdDir(env.STATE_DIRECTORY) || DEFAULT_STATE_DIR);
  const runtimeDir = c.runtime_dir ? pathOf('coordinator.runtime_dir', c.runtime_dir, o, source) : resolve(firstSystemdDir(env.RUNTIME_DIRECTORY) || join(stateDir, 'run'));
  return {
    ...raw,
    coordinator: {
      ...raw.coordinator,
      state_dir: stateDir,
      runtime_dir: runtimeDir,
      log_level: resolveLogLevel(raw.coordinator.log_level, env),
      log_format: resolveLogFormat(raw.coordinator.log_format, env),
      keys: c.keys === '' ? '' : pathOf('coordinator.keys', c.keys, o, source),
      next_keys: c.next_keys ? pathOf('coordinator.next_keys', c.next_keys, o, source) : c.keys === '' ? '' : join(dirname(pathOf('coordinator.keys', c.keys, o, source)), 'coordinator-next.json'),
      signing_key: c.signing_key === '' ? signingCredential(env) : pathOf('coordinator.signing_key', c.signing_key, o, source),
      enrolled_agents: c.enrolled_agents ? pathOf('coordinator.enrolled_agents', c.enrolled_agents, o, source) : join(stateDir, 'enrolled-agents.json'),
    },
    broker: {
      ...raw.broker,
      ca: raw.broker.ca === '' ? '' : pathOf('broker.ca', raw.broker.ca, o, source),
      cert: raw.broker.cert === '' ? '' : pathOf('broker.cert', raw.broker.cert, o, source),
      key: raw.broker.key === '' ? '' : pathOf('broker.key', raw.broker.key, o, source),
      password_file: raw.broker.password_file === '' ? '' : pathOf('broker.password_file', raw.broker.password_file, o, source),
    },
    federationModel: toFederationModel(raw.model, overrides.origins, source),
    source,
    origins: overrides.origins,
  };
}

/**
 * An empty signing_key takes the key systemd handed the service as a credential
 * (LoadCredential=coordinator-signing.key:…, systemd/drop-ins/coordinator-signing-key.conf): the
 * unit's dynamic user cannot read the root-owned 0600 file itself. Neither: no signing (warned).
 */
function signingCredential(env: NodeJS.ProcessEnv): string {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!dir) return '';
  const path = join(dir, COORDINATOR_SIGNING_KEY_FILE);
  return existsSync(path) ? path : '';
}
