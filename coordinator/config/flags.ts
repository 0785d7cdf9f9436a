import type { FlagDefs, FlagValues } from '../../common/cli-flags.js';
import { CONFIG_PATH_VARIABLE, DEFAULT_CONFIG_PATH, ENV_PREFIX, type LoadOptions } from './load.js';

/** The config flags every coordinator command accepts (spread into each command's `flags`; the runner parses them, common/cli-flags.ts). */
export const CONFIG_FLAGS = {
  config: { type: 'string', value: 'FILE', description: 'the config file (absent: every key at its default)', defaultText: `${DEFAULT_CONFIG_PATH} if it exists`, env: CONFIG_PATH_VARIABLE },
  set: { type: 'string', multiple: true, value: 'SECTION.KEY=VALUE', description: "sets any config key, repeatable ('icosfl-coordinator check-config --help' lists them)", env: `${ENV_PREFIX}<SECTION>_<KEY>` },
} as const satisfies FlagDefs;

/** What loadCoordinatorConfig needs from the parsed config flags. */
export function loadOptionsOf(values: FlagValues<typeof CONFIG_FLAGS>): LoadOptions {
  return { configPath: values.config, sets: values.set ?? [] };
}
