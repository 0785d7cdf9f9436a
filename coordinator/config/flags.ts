import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { LoadOptions } from './load.js';

/**
 * The config flags every coordinator command accepts, parsed with node:util parseArgs (an
 * unknown flag is a TypeError naming it, which the CLI maps to exit code 64):
 *   --config FILE  --set section.key=value (repeatable)
 */
export const CONFIG_FLAGS_USAGE = '[--config FILE] [--set section.key=value ...]';

const CONFIG_OPTIONS = {
  config: { type: 'string' },
  set: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

export type FlagValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export function parseConfigFlags(argv: string[], extra: NonNullable<ParseArgsConfig['options']> = {}): { load: LoadOptions; values: FlagValues } {
  const { values, positionals } = parseArgs({ args: argv, options: { ...CONFIG_OPTIONS, ...extra }, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new TypeError(`unexpected argument '${positionals[0]}'`);
  const v = values as FlagValues;
  return { load: { configPath: v.config as string | undefined, sets: (v.set as string[] | undefined) ?? [] }, values: v };
}
