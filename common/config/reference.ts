import { z } from 'zod';
import { unwrapSchema, type SectionsSchema } from './overrides.js';

/**
 * The configuration reference, read from a config schema (an object of sections): every key with
 * its type, default, allowed values, environment variable and the `.describe()` text the schema
 * gives it. Nothing here names a key, so a key added to a schema appears in `check-config --help`
 * and docs/CONFIG.md (scripts/config-doc.ts) by itself; a key without a description is reported
 * by the test that keeps docs/CONFIG.md current.
 */
export interface ReferenceKey {
  section: string;
  key: string;
  type: string;
  /** As TOML would write it; '' when the key has no default. */
  default: string;
  /** Range, choices or pattern; '' when the type says it all. */
  allowed: string;
  env: string;
  description: string;
}

export interface ReferenceSection {
  section: string;
  description: string;
  keys: ReferenceKey[];
}

/** `.describe()` text anywhere on the way from the field to its base type (outermost first). */
function descriptionOf(schema: z.ZodTypeAny): string {
  for (let s: z.ZodTypeAny | undefined = schema; s; ) {
    if (s.description) return s.description;
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else s = undefined;
  }
  return '';
}

function defaultOf(schema: z.ZodTypeAny): unknown {
  for (let s: z.ZodTypeAny | undefined = schema; s; ) {
    if (s instanceof z.ZodDefault) return s._def.defaultValue();
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else s = undefined;
  }
  return undefined;
}

/** A TOML literal: strings quoted, lists bracketed. */
export function tomlValue(v: unknown): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function numberRange(n: z.ZodNumber): string {
  let lo: { value: number; inclusive: boolean } | undefined;
  let hi: { value: number; inclusive: boolean } | undefined;
  for (const c of n._def.checks) {
    if (c.kind === 'min') lo = c;
    if (c.kind === 'max') hi = c;
  }
  if (lo?.inclusive && hi?.inclusive) return `${lo.value} to ${hi.value}`;
  return [lo ? `${lo.inclusive ? '≥' : '>'} ${lo.value}` : '', hi ? `${hi.inclusive ? '≤' : '<'} ${hi.value}` : ''].filter(Boolean).join(', ');
}

function describeType(schema: z.ZodTypeAny): { type: string; allowed: string } {
  const s = unwrapSchema(schema);
  if (s instanceof z.ZodNumber) return { type: s.isInt ? 'integer' : 'number', allowed: numberRange(s) };
  if (s instanceof z.ZodBoolean) return { type: 'boolean', allowed: '' };
  if (s instanceof z.ZodEnum) return { type: 'string', allowed: (s.options as string[]).map((o) => JSON.stringify(o)).join(', ') };
  if (s instanceof z.ZodLiteral) return { type: typeof s.value === 'string' ? 'string' : typeof s.value, allowed: JSON.stringify(s.value) };
  if (s instanceof z.ZodString) {
    const checks = s._def.checks;
    const regex = checks.find((c) => c.kind === 'regex');
    const min = checks.find((c) => c.kind === 'min');
    const allowed = regex && regex.kind === 'regex' ? `matches ${String(regex.regex)}` : min && min.kind === 'min' && min.value > 0 ? 'not empty' : '';
    return { type: 'string', allowed };
  }
  if (s instanceof z.ZodArray) {
    const item = describeType(s._def.type);
    const min = s._def.minLength?.value;
    const max = s._def.maxLength?.value;
    const count = min && max ? `${min} to ${max} entries` : min ? `${min} or more entries` : max ? `at most ${max} entries` : '';
    const parts = [count, item.allowed ? `each ${item.allowed}` : ''].filter(Boolean);
    return { type: `list of ${item.type}s`, allowed: parts.join('; ') };
  }
  if (s instanceof z.ZodUnion) {
    const options = (s._def.options as z.ZodTypeAny[]).map(describeType);
    const types = [...new Set(options.map((o) => o.type))];
    return { type: types.join(' or '), allowed: options.map((o) => o.allowed || `any ${o.type}`).join(', or ') };
  }
  return { type: s._def.typeName.replace(/^Zod/, '').toLowerCase(), allowed: '' };
}

/** `envName(section, key)`: the variable that sets `section.key`, e.g. ICOSFL_SAMPLER_INTERVAL_MS. */
export function configReference(schema: SectionsSchema, envName: (section: string, key: string) => string): ReferenceSection[] {
  return Object.entries(schema.shape).map(([section, field]) => {
    const obj = unwrapSchema(field as z.ZodTypeAny);
    if (!(obj instanceof z.ZodObject)) throw new RangeError(`configReference: section '${section}' is not an object schema`);
    const keys = Object.entries(obj.shape as Record<string, z.ZodTypeAny>).map(([key, f]) => ({
      section,
      key,
      ...describeType(f),
      default: tomlValue(defaultOf(f)),
      env: envName(section, key),
      description: descriptionOf(f),
    }));
    return { section, description: descriptionOf(field as z.ZodTypeAny), keys };
  });
}

/** For `check-config --help`: one block per key, grouped by section. */
export function referenceText(sections: ReferenceSection[]): string {
  const out: string[] = [];
  for (const s of sections) {
    out.push(`[${s.section}]${s.description ? `  ${s.description}` : ''}`);
    for (const k of s.keys) {
      const facts = [k.type, k.default !== '' ? `default ${k.default}` : '', k.allowed, `env ${k.env}`].filter(Boolean).join('; ');
      out.push(`  ${k.key} (${facts})`, `      ${k.description}`);
    }
    out.push('');
  }
  return out.join('\n');
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (text: string) => (text === '' ? '' : `\`${text.replace(/`/g, "'")}\``);

/** For docs/CONFIG.md: a table per section. */
export function referenceMarkdown(sections: ReferenceSection[]): string {
  const out: string[] = [];
  for (const s of sections) {
    out.push(`### [${s.section}]`, '');
    if (s.description) out.push(s.description, '');
    out.push('| key | type | default | allowed | environment | description |', '|---|---|---|---|---|---|');
    for (const k of s.keys) out.push(`| ${[code(k.key), k.type, code(k.default), cell(k.allowed), code(k.env), cell(k.description)].join(' | ')} |`);
    out.push('');
  }
  return out.join('\n');
}
