import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { LoadOptions } from './load.js';

/**
 * The config flags every agent command accepts, parsed once with node:util parseArgs (an unknown
 * flag is a TypeError naming it, which the CLI maps to exit code 64):
 *   --config PATH  --state-dir DIR  --runtime-dir DIR  --log-level LEVEL  --set section.key=value (repeatable)
 */
export const CONFIG_FLAGS_USAGE = '[--config PATH] [--state-dir DIR] [--runtime-dir DIR] [--log-level LEVEL] [--set section.key=value ...]';

const CONFIG_OPTIONS = {
  config: { type: 'string' },
  'state-dir': { type: 'string' },
  'runtime-dir': { type: 'string' },
  'log-level': { type: 'string' },
  set: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

export function parseConfigFlags<E extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  extra: E = {} as E,
): { load: LoadOptions; values: Record<string, string | boolean | string[] | boolean[] | undefined> } {
  const { values } = parseArgs({ args: argv, options: { ...CONFIG_OPTIONS, ...extra }, strict: true, allowPositionals: false });
  const v = values as Record<string, string | boolean | string[] | boolean[] | undefined>;
  return {
    load: {
      configPath: v.config as string | undefined,
      sets: (v.set as string[] | undefined) ?? [],
      shortcuts: {
        'state-dir': v['state-dir'] as string | undefined,
        'runtime-dir': v['runtime-dir'] as string | undefined,
        'log-level': v['log-level'] as string | undefined,
      },
    },
    values: v,
  };
}
