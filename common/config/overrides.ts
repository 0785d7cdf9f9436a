import { z } from 'zod';
import { IcosflError } from '../errors.js';
import type { ConfigLayer } from './toml-file.js';

/**
 * Environment variables and `--set section.key=value` flags as a partial config layer, each
 * value coerced to the type its key expects (a variable is always a string) and tagged with
 * where it came from, so a bad value is reported as "environment variable X" or "flag --set
 * x.y" rather than as a file key. Generic over the program's schema (an object of sections):
 *   <PREFIX><SECTION>_<KEY>=value   lists are comma-separated; booleans true/false/1/0/yes/no/on/off
 *   --set section.key=value         same coercion
 */
export interface Overrides {
  values: ConfigLayer;
  /** 'section.key' → human-readable origin. */
  origins: Map<string, string>;
}

/** A config schema: a zod object whose fields are (defaulted) section objects. */
export type SectionsSchema = z.ZodObject<z.ZodRawShape>;

export function emptyOverrides(): Overrides {
  return { values: {}, origins: new Map() };
}

/** Strips defaults, optionals and refinements down to the schema that says the type. */
export function unwrapSchema(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else return s;
  }
}

/** The schema of `section.key`, or undefined for an unknown key (the schema then reports it as unknown). */
export function fieldSchema(schema: SectionsSchema, section: string, key: string): z.ZodTypeAny | undefined {
  const sec = schema.shape[section];
  if (!sec) return undefined;
  const obj = unwrapSchema(sec);
  return obj instanceof z.ZodObject ? (obj.shape as Record<string, z.ZodTypeAny>)[key] : undefined;
}

/** Strings that clearly are the expected type become it; anything else stays a string so zod names the mismatch. */
export function coerceValue(schema: SectionsSchema, section: string, key: string, text: string): unknown {
  const field = fieldSchema(schema, section, key);
  const inner = field ? unwrapSchema(field) : undefined;
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

/** Adds one `section.key` = text override; a malformed name is CONFIG_INVALID naming its origin. */
export function putOverride(into: Overrides, schema: SectionsSchema, dotted: string, text: string, origin: string): void {
  const dot = dotted.indexOf('.');
  if (dot <= 0 || dot === dotted.length - 1 || dotted.indexOf('.', dot + 1) >= 0) {
    throw new IcosflError('CONFIG_INVALID', `${origin}: expected section.key=value, got '${dotted}'`, { details: { origin } });
  }
  const section = dotted.slice(0, dot);
  const key = dotted.slice(dot + 1);
  (into.values[section] ??= {})[key] = coerceValue(schema, section, key, text);
  into.origins.set(`${section}.${key}`, origin);
}

export interface EnvOverrideOptions {
  /** e.g. 'ICOSFL_COORD_': variables are `<prefix><SECTION>_<KEY>`. */
  prefix: string;
  schema: SectionsSchema;
  /**
   * 'ignore': a variable naming no section of the schema is skipped (the prefix is shared with
   * other programs' variables); 'report': it is passed on, so it is reported as an unknown key.
   */
  unknownSections: 'ignore' | 'report';
}

export function envOverrides(env: NodeJS.ProcessEnv, opts: EnvOverrideOptions, into: Overrides = emptyOverrides()): Overrides {
  if (!/^[A-Z][A-Z0-9_]*_$/.test(opts.prefix)) throw new RangeError(`envOverrides: prefix must be upper-case and end in '_', got '${opts.prefix}'`);
  const pattern = new RegExp(`^${opts.prefix}([A-Z0-9]+)_([A-Z0-9_]+)$`);
  const sections = Object.keys(opts.schema.shape);
  for (const [name, value] of Object.entries(env)) {
    const m = pattern.exec(name);
    if (!m || value === undefined) continue;
    const section = m[1]!.toLowerCase();
    if (opts.unknownSections === 'ignore' && !sections.includes(section)) continue;
    putOverride(into, opts.schema, `${section}.${m[2]!.toLowerCase()}`, value, `environment variable ${name}`);
  }
  return into;
}

/** The `--set section.key=value` flags, in order (a later one wins). */
export function setOverrides(sets: readonly string[], schema: SectionsSchema, into: Overrides = emptyOverrides()): Overrides {
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq < 0) throw new IcosflError('CONFIG_INVALID', `flag --set ${s}: expected section.key=value`, { details: { origin: `flag --set ${s}` } });
    const dotted = s.slice(0, eq).trim();
    putOverride(into, schema, dotted, s.slice(eq + 1), `flag --set ${dotted}`);
  }
  return into;
}
