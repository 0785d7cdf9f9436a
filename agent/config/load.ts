import { readFileSync } from 'node:fs';
import { dirname, resolve, join } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { IcosflError } from '../../common/errors.js';
import { resolveLogFormat } from '../../common/config/log-level.js';
import { errnoWords } from '../../common/system-errors.js';
import { METRICS } from '../collectors/index.js';
import { missingColumns, readReplayHeader } from '../sampler/replay-source.js';
import { envOverrides, flagOverrides, type ConfigLayer, type Overrides } from './overrides.js';
import { checkedAgentConfigSchema, LOG_LEVELS, type AgentConfig } from './schema.js';

/**
 * Loads the agent config: defaults < file < environment < flags, validated once by the zod
 * schema. Every error names the key and where its value came from (the file path, the variable
 * or the flag); the CLI maps CONFIG_* errors to exit code 78.
 */
export const DEFAULT_CONFIG_PATH = '/etc/icosfl/agent.toml';
const DEFAULT_STATE_DIR = '/var/lib/icosfl';

export interface LoadOptions {
  /** Explicit file (--config); else $ICOSFL_CONFIG; else DEFAULT_CONFIG_PATH if it exists. */
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** `--set section.key=value` flags. */
  sets?: string[];
  /** --state-dir, --runtime-dir, --log-level. */
  shortcuts?: Record<string, string | undefined>;
  /** The file tried when none is named; DEFAULT_CONFIG_PATH unless a test or a package moves it. */
  defaultPath?: string;
}

function readConfigFile(path: string, explicit: boolean): ConfigLayer | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return null;
    if (code === 'ENOENT') throw new IcosflError('CONFIG_NOT_FOUND', `config file ${path} does not exist`, { cause: err });
    throw new IcosflError('CONFIG_INVALID', `config file ${path} cannot be read: ${errnoWords(err as NodeJS.ErrnoException)}; ${code === 'EISDIR' ? 'name the file, not its directory' : 'run as a user that may read it or fix its permissions'}`, { cause: err });
  }
  try {
    return parseToml(text) as ConfigLayer;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0];
      throw new IcosflError('CONFIG_INVALID', `${path}:${err.line}:${err.column}: invalid TOML: ${first}`, { cause: err, details: { file: path } });
    }
    throw err;
  }
}

function merge(...layers: ConfigLayer[]): ConfigLayer {
  const out: ConfigLayer = {};
  for (const layer of layers) {
    for (const [section, values] of Object.entries(layer)) {
      // A scalar where a section belongs is kept as is so zod reports it as a wrong type.
      if (values === null || typeof values !== 'object' || Array.isArray(values)) (out as Record<string, unknown>)[section] = values;
      else out[section] = { ...(out[section] && typeof out[section] === 'object' ? out[section] : {}), ...values };
    }
  }
  return out;
}

interface KeyProblem {
  key: string;
  source: string;
  message: string;
}

function originOf(key: string, origins: Map<string, string>, file: string | null): string {
  // Array items (sampler.metrics.3) come from the array's key.
  for (let k = key; k; k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '') {
    const o = origins.get(k);
    if (o) return o;
  }
  return file ?? 'defaults';
}

function describe(issue: z.ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}, got ${issue.received}`;
    case 'too_small':
      return issue.type === 'array' ? `must have at least ${String(issue.minimum)} item(s)` : `must be ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return issue.type === 'array' ? `must have at most ${String(issue.maximum)} item(s)` : `must be ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
    case 'invalid_enum_value':
      return `must be one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}, got '${String(issue.received)}'`;
    default:
      return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  }
}

function problemsOf(error: z.ZodError, origins: Map<string, string>, file: string | null): KeyProblem[] {
  const out: KeyProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) {
        const key = [...issue.path, k].join('.');
        out.push({ key, source: originOf(key, origins, file), message: 'unknown key' });
      }
      continue;
    }
    // A union of enum + '' reports 'invalid_union'; its first branch says what was allowed.
    const shown = issue.code === 'invalid_union' ? (issue.unionErrors[0]?.issues[0] ?? issue) : issue;
    const key = issue.path.join('.');
    out.push({ key, source: originOf(key, origins, file), message: describe(shown) });
  }
  return out;
}

function configError(problems: KeyProblem[]): IcosflError {
  const lines = problems.map((p) => `${p.key} (${p.source}): ${p.message}`);
  return new IcosflError('CONFIG_INVALID', `invalid configuration: ${lines.join('; ')}`, { details: { problems } });
}

function firstDir(list: string | undefined): string | undefined {
  // systemd passes several directories colon-separated when the unit names several.
  const first = list?.split(':')[0];
  return first ? first : undefined;
}

/**
 * sampler.replay_file as an absolute path ('' stays ''): relative to the config file's directory
 * when the file set it, so a config beside its trace works from any cwd; to the cwd when it
 * came from the environment or a flag (or there is no file).
 */
function replayPath(value: string, origins: Map<string, string>, file: string | null): string {
  if (value === '') return '';
  const fromFile = file !== null && !origins.has('sampler.replay_file');
  return resolve(fromFile ? dirname(file) : process.cwd(), value);
}

/**
 * The replay file must exist and have a column for every sampler.metrics entry. Only the header
 * is read here (every command loads the config); the rows are parsed when the sampler starts.
 */
function checkReplayColumns(path: string, metrics: string[], origins: Map<string, string>, file: string | null): void {
  let header: string[];
  try {
    header = readReplayHeader(path);
  } catch (err) {
    throw configError([{ key: 'sampler.replay_file', source: originOf('sampler.replay_file', origins, file), message: (err as Error).message }]);
  }
  const missing = missingColumns(header, metrics);
  if (missing.length === 0) return;
  throw configError([
    {
      key: 'sampler.metrics',
      source: originOf('sampler.metrics', origins, file),
      message: `${missing.length === 1 ? 'metric' : 'metrics'} ${missing.map((m) => `'${m}'`).join(', ')} ${missing.length === 1 ? 'is not a column' : 'are not columns'} of sampler.replay_file ${path} (its columns: ${header.join(', ')}); every metric must be one`,
    },
  ]);
}

export function loadAgentConfig(opts: LoadOptions = {}): AgentConfig {
  const env = opts.env ?? process.env;
  const explicit = opts.configPath ?? env.ICOSFL_CONFIG;
  const path = resolve(explicit ?? opts.defaultPath ?? DEFAULT_CONFIG_PATH);
  const file = readConfigFile(path, explicit !== undefined);
  const source = file ? path : null;

  const overrides: Overrides = { values: {}, origins: new Map() };
  envOverrides(env, overrides);
  flagOverrides(opts.sets ?? [], opts.shortcuts ?? {}, overrides);

  const parsed = checkedAgentConfigSchema.safeParse(merge(file ?? {}, overrides.values));
  if (!parsed.success) throw configError(problemsOf(parsed.error, overrides.origins, source));
  const raw = parsed.data;

  const unknown = raw.sampler.metrics.filter((m) => !(m in METRICS));
  if (unknown.length > 0) {
    throw configError([
      {
        key: 'sampler.metrics',
        source: originOf('sampler.metrics', overrides.origins, source),
        message: `unknown metric ${unknown.map((m) => `'${m}'`).join(', ')}; known: ${Object.keys(METRICS).join(', ')}`,
      },
    ]);
  }

  const replayFile = replayPath(raw.sampler.replay_file, overrides.origins, source);
  // TLS and password files: relative to the config file's directory, as replay_file.
  const federation = { ...raw.federation };
  for (const k of ['ca', 'cert', 'key', 'password_file'] as const) {
    if (federation[k] !== '') federation[k] = resolve(source !== null && !overrides.origins.has(`federation.${k}`) ? dirname(source) : process.cwd(), federation[k]);
  }
  if (replayFile) checkReplayColumns(replayFile, raw.sampler.metrics, overrides.origins, source);

  const stateDir = resolve(raw.agent.state_dir || firstDir(env.STATE_DIRECTORY) || DEFAULT_STATE_DIR);
  const runtimeDir = resolve(raw.agent.runtime_dir || firstDir(env.RUNTIME_DIRECTORY) || join(stateDir, 'run'));
  const envLevel = env.LOG_LEVEL && (LOG_LEVELS as readonly string[]).includes(env.LOG_LEVEL) ? (env.LOG_LEVEL as AgentConfig['agent']['log_level']) : 'info';
  return {
    ...raw,
    agent: { state_dir: stateDir, runtime_dir: runtimeDir, log_level: raw.agent.log_level || envLevel, log_format: resolveLogFormat(raw.agent.log_format, env) },
    sampler: { ...raw.sampler, proc_root: resolve(raw.sampler.proc_root), sys_root: resolve(raw.sampler.sys_root), replay_file: replayFile },
    federation,
    source,
  };
}
