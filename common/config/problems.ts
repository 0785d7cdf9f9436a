import type { z } from 'zod';
import { IcosflError } from '../errors.js';

/**
 * Turns schema failures into one CONFIG_INVALID error whose message names, for each problem,
 * the key, where its value came from (the file, an environment variable or a flag) and what
 * was allowed: `broker.chunk_bytes (/etc/icosfl/coordinator.toml): must be ≤ 262144`.
 */
export interface KeyProblem {
  key: string;
  source: string;
  message: string;
}

/**
 * Where `key`'s value came from: its own override, an enclosing one (array items such as
 * model.metrics.3 come from the array's key), one inside it (an unknown section set only by
 * an override), else the file (or the defaults when there is none).
 */
export function originOf(key: string, origins: ReadonlyMap<string, string>, file: string | null): string {
  for (let k = key; k; k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '') {
    const o = origins.get(k);
    if (o) return o;
  }
  for (const [k, o] of origins) if (k.startsWith(`${key}.`)) return o;
  return file ?? 'defaults';
}

/** What was wrong and what is allowed, in words. */
export function describeIssue(issue: z.ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}, got ${issue.received}`;
    case 'too_small':
      return issue.type === 'array' ? `must have at least ${String(issue.minimum)} item(s)` : `must be ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return issue.type === 'array' ? `must have at most ${String(issue.maximum)} item(s)` : `must be ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
    case 'invalid_enum_value':
      return `must be one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}, got '${String(issue.received)}'`;
    case 'invalid_literal':
      return `must be ${JSON.stringify(issue.expected)}`;
    default:
      return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  }
}

/** `rename` maps a schema path to the key the user wrote (e.g. camelCase model fields back to snake_case). */
export function problemsOf(error: z.ZodError, origins: ReadonlyMap<string, string>, file: string | null, rename: (path: (string | number)[]) => string = (p) => p.join('.')): KeyProblem[] {
  const out: KeyProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) {
        const key = rename([...issue.path, k]);
        out.push({ key, source: originOf(key, origins, file), message: issue.path.length === 0 ? 'unknown section' : 'unknown key' });
      }
      continue;
    }
    // A union (an enum or '') reports 'invalid_union'; its first branch says what was allowed.
    const shown = issue.code === 'invalid_union' ? (issue.unionErrors[0]?.issues[0] ?? issue) : issue;
    const key = rename(issue.path);
    out.push({ key, source: originOf(key, origins, file), message: describeIssue(shown) });
  }
  return out;
}

export function configError(problems: KeyProblem[]): IcosflError {
  const lines = problems.map((p) => `${p.key} (${p.source}): ${p.message}`);
  return new IcosflError('CONFIG_INVALID', `invalid configuration: ${lines.join('; ')}`, { details: { problems } });
}
