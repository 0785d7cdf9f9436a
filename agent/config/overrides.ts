import { z } from 'zod';
import { IcosflError } from '../../common/errors.js';
import { agentConfigSchema } from './schema.js';

/**
 * Environment variables and flags as a partial config, each value coerced to the type its key
 * expects (a variable is always a string) and tagged with where it came from, so a bad value is
 * reported as "environment variable ICOSFL_SAMPLER_INTERVAL_MS" rather than as a file key.
 *
 *   ICOSFL_<SECTION>_<KEY>=value    e.g. ICOSFL_SAMPLER_INTERVAL_MS=500, ICOSFL_TRAINER_ENABLED=false,
 *                                   ICOSFL_SAMPLER_METRICS=cpu_busy_pct,load1 (lists are comma-separated)
 *   --set section.key=value         same coercion; also --state-dir, --runtime-dir, --log-level
 * Variables whose section is not one of ours (ICOSFL_CONFIG, a coordinator's) are ignored.
 */
export type ConfigLayer = Record<string, Record<string, unknown>>;

export interface Overrides {
  values: ConfigLayer;
  /** 'section.key' → human-readable origin. */
  origins: Map<string, string>;
}

export const FLAG_SHORTCUTS: Record<string, string> = {
  'state-dir': 'agent.state_dir',
  'runtime-dir': 'agent.runtime_dir',
  'log-level': 'agent.log_level',
};

const SECTIONS = Object.keys(agentConfigSchema.shape);

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else return s;
  }
}

/** The schema of `section.key`, or undefined for an unknown key (zod then reports it as unknown). */
function fieldSchema(section: string, key: string): z.ZodTypeAny | undefined {
  const sec = agentConfigSchema.shape[section as keyof typeof agentConfigSchema.shape];
  if (!sec) return undefined;
  const obj = unwrap(sec);
  return obj instanceof z.ZodObject ? (obj.shape as Record<string, z.ZodTypeAny>)[key] : undefined;
}

/** Strings that clearly are the expected type become it; anything else stays a string so zod names the mismatch. */
export function coerce(section: string, key: string, text: string): unknown {
  const field = fieldSchema(section, key);
  const inner = field ? unwrap(field) : undefined;
  const t = text.trim();
  if (inner instanceof z.ZodNumber) return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? Number(t) : text;
  if (inner instanceof z.ZodBoolean) {
    if (/^(true|1|yes|on)$/i.test(t)) return true;
    if (/^(false|0|no|off)$/i.test(t)) return false;
    return text;
  }
  if (inner instanceof z.ZodArray) return t === '' ? [] : t.split(',').map((s) => s.trim());
  return text;
}

function put(into: Overrides, dotted: string, text: string, origin: string): void {
  const dot = dotted.indexOf('.');
  if (dot <= 0 || dot === dotted.length - 1) {
    throw new IcosflError('CONFIG_INVALID', `${origin}: expected section.key=value, got '${dotted}'`);
  }
  const section = dotted.slice(0, dot);
  const key = dotted.slice(dot + 1);
  (into.values[section] ??= {})[key] = coerce(section, key, text);
  into.origins.set(`${section}.${key}`, origin);
}

export function envOverrides(env: NodeJS.ProcessEnv, into: Overrides = { values: {}, origins: new Map() }): Overrides {
  for (const [name, value] of Object.entries(env)) {
    const m = /^ICOSFL_([A-Z0-9]+)_([A-Z0-9_]+)$/.exec(name);
    if (!m || value === undefined) continue;
    const section = m[1]!.toLowerCase();
    if (!SECTIONS.includes(section)) continue;
    put(into, `${section}.${m[2]!.toLowerCase()}`, value, `environment variable ${name}`);
  }
  return into;
}

/** `sets`: the `--set section.key=value` flags; `shortcuts`: --state-dir and friends by flag name. */
export function flagOverrides(sets: string[], shortcuts: Record<string, string | undefined>, into: Overrides = { values: {}, origins: new Map() }): Overrides {
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq < 0) throw new IcosflError('CONFIG_INVALID', `flag --set ${s}: expected section.key=value`);
    put(into, s.slice(0, eq).trim(), s.slice(eq + 1), `flag --set ${s.slice(0, eq).trim()}`);
  }
  for (const [flag, value] of Object.entries(shortcuts)) {
    if (value === undefined) continue;
    const dotted = FLAG_SHORTCUTS[flag];
    if (!dotted) throw new RangeError(`flagOverrides: unknown shortcut '${flag}'; expected one of ${Object.keys(FLAG_SHORTCUTS).join(', ')}`);
    put(into, dotted, value, `flag --${flag}`);
  }
  return into;
}
