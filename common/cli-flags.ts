import { parseArgs } from 'node:util';
import { IcosflError } from './errors.js';

/**
 * Command-line flags, declared once: the parser (node:util parseArgs) and the help text are
 * both made from these definitions, so a flag cannot be accepted without being documented.
 *
 * To add a flag to a command, add one entry to that command's `flags` object, e.g. in
 * simulate/commands/convert.ts:
 *   resample: { type: 'string', value: 'MS', description: 'resample every series to one row per MS milliseconds', defaultText: 'no resampling' },
 * and read it as `values.resample` in its `run`. Shared groups (the config flags of every agent
 * command, agent/config/flags.ts) are spread into a command's object.
 */
export interface FlagDef {
  type: 'string' | 'boolean';
  /** Repeatable: the values arrive as an array, in order. */
  multiple?: boolean;
  /** One letter, as `-x`. */
  short?: string;
  /** The value's placeholder in help (`--out DIR`); string flags only. */
  value?: string;
  /** What it does, one line (lower case, no final period). */
  description: string;
  /** The value used when the flag is absent: given to the parser, and shown in help. */
  default?: string;
  /** Shown in help only: what applies when the flag is absent, where the command works it out. */
  defaultText?: string;
  /** The environment variable that sets the same thing (the flag wins over it). */
  env?: string;
  /** The command cannot run without it: the parser refuses a command line that lacks it. */
  required?: boolean;
}

export type FlagDefs = Readonly<Record<string, FlagDef>>;

type ValueOf<F extends FlagDef> = F['type'] extends 'boolean' ? (F['multiple'] extends true ? boolean[] : boolean) : F['multiple'] extends true ? string[] : string;

/** The parsed values, typed from the definitions: a flag with a `default` is always present. */
export type FlagValues<D extends FlagDefs> = { [K in keyof D]: D[K] extends { default: string } | { required: true } ? ValueOf<D[K]> : ValueOf<D[K]> | undefined };

export interface ParsedArgs<D extends FlagDefs = FlagDefs> {
  values: FlagValues<D>;
  positionals: string[];
}

/** The flags every command answers besides its own; they are handled before parsing. */
export const HELP_FLAG: FlagDef = { type: 'boolean', short: 'h', description: 'print this help and exit' };

/** `--name VALUE` / `-n, --name VALUE`, as help and error messages show a flag. */
export function flagSyntax(name: string, def: FlagDef): string {
  const long = `--${name}${def.type === 'string' ? ` ${def.value ?? 'VALUE'}` : ''}`;
  return def.short ? `-${def.short}, ${long}` : long;
}

/** True when the arguments ask for help (before a `--` that ends the options). */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

function usageError(message: string, invocation: string): IcosflError {
  return new IcosflError('USAGE_INVALID', `${message}; '${invocation} --help' lists its options`, { details: { invocation } });
}

/**
 * Parses `argv` against `defs`. `invocation` ("icosfl-agent status") goes into every message, which
 * names the flag and points at --help; node's own wording never reaches the user. `operands`:
 * whether positional arguments are accepted (the command checks how many).
 */
export function parseFlags<D extends FlagDefs>(defs: D, argv: readonly string[], invocation: string, operands: boolean): ParsedArgs<D> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string; default?: string }> = {};
  for (const [name, d] of Object.entries(defs)) {
    options[name] = { type: d.type, ...(d.multiple ? { multiple: true } : {}), ...(d.short ? { short: d.short } : {}), ...(d.default !== undefined ? { default: d.default } : {}) };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code?.startsWith('ERR_PARSE_ARGS_')) throw err;
    // Node quotes the flag first: '--out <value>', '-j, --json' or '-x' (as the user wrote it).
    const words = (/'([^']*)'/.exec((err as Error).message)?.[1] ?? '').split(/[ ,]+/).filter((w) => w.startsWith('-'));
    const flag = words.find((w) => w.startsWith('--')) ?? words[0] ?? '';
    const entry = Object.entries(defs).find(([name, d]) => flag === `--${name}` || (d.short !== undefined && flag === `-${d.short}`));
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || !entry) throw usageError(`unknown option '${flag}' for '${invocation}'`, invocation);
    const [name, def] = entry;
    throw usageError(def.type === 'boolean' ? `option '--${name}' takes no value` : `option '--${name}' needs a value: ${flagSyntax(name, def)}`, invocation);
  }
  const { values, positionals } = parsed;
  if (!operands && positionals.length > 0) throw usageError(`unexpected argument '${positionals[0]}': '${invocation}' takes no arguments`, invocation);
  for (const [name, d] of Object.entries(defs)) {
    if (d.required && values[name] === undefined) throw usageError(`${flagSyntax(name, d)} is required: ${d.description}`, invocation);
  }
  return { values: { ...values } as FlagValues<D>, positionals };
}

/** One entry per flag: `--name VALUE   description [default: …] [env: …]`, the columns aligned. */
export function flagHelp(defs: FlagDefs): string[] {
  const entries = Object.entries({ ...defs, help: HELP_FLAG });
  const syntax = entries.map(([name, d]) => flagSyntax(name, d) + (d.multiple ? ' …' : ''));
  const width = Math.min(32, Math.max(...syntax.map((s) => s.length)));
  return entries.map(([, d], i) => {
    const s = syntax[i]!;
    const extra = [d.required ? '[required]' : '', d.default !== undefined ? `[default: ${d.default}]` : d.defaultText ? `[default: ${d.defaultText}]` : '', d.env ? `[env: ${d.env}]` : ''].filter(Boolean).join(' ');
    const text = extra ? `${d.description} ${extra}` : d.description;
    return s.length > width ? `  ${s}\n  ${''.padEnd(width)}  ${text}` : `  ${s.padEnd(width)}  ${text}`;
  });
}
