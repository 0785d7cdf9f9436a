import type { FlagDefs, FlagValues } from '../../common/cli-flags.js';
import { DEFAULT_CONFIG_PATH, type LoadOptions } from './load.js';

/**
 * The config flags every agent command accepts (spread into each command's `flags`; the runner
 * parses them, common/cli-flags.ts). Each shortcut sets one key, as `--set` would.
 */
export const CONFIG_FLAGS = {
  config: { type: 'string', value: 'PATH', description: 'the config file (absent: every key at its default)', defaultText: `${DEFAULT_CONFIG_PATH} if it exists`, env: 'ICOSFL_CONFIG' },
  'state-dir': { type: 'string', value: 'DIR', description: 'sets agent.state_dir: ring, models and keys', defaultText: '$STATE_DIRECTORY, else /var/lib/icosfl', env: 'ICOSFL_AGENT_STATE_DIR' },
  'runtime-dir': { type: 'string', value: 'DIR', description: 'sets agent.runtime_dir: the control socket', defaultText: '$RUNTIME_DIRECTORY, else <state_dir>/run', env: 'ICOSFL_AGENT_RUNTIME_DIR' },
  'log-level': { type: 'string', value: 'LEVEL', description: 'sets agent.log_level: trace, debug, info, warn, error, fatal or silent', defaultText: '$LOG_LEVEL, else info', env: 'ICOSFL_AGENT_LOG_LEVEL' },
  set: { type: 'string', multiple: true, value: 'SECTION.KEY=VALUE', description: "sets any config key, repeatable ('icosfl-agent check-config --help' lists them)", env: 'ICOSFL_<SECTION>_<KEY>' },
} as const satisfies FlagDefs;

/** The control-socket flag of the commands that ask the running daemon. */
export const SOCKET_FLAG = {
  socket: { type: 'string', value: 'PATH', description: "the daemon's control socket", defaultText: '<agent.runtime_dir>/agent.sock, else /run/icosfl/agent.sock' },
} as const satisfies FlagDefs;

export const JSON_FLAG = { json: { type: 'boolean', description: 'print one JSON object instead of text' } } as const satisfies FlagDefs;

/** What loadAgentConfig needs from the parsed config flags. */
export function loadOptionsOf(values: FlagValues<typeof CONFIG_FLAGS>): LoadOptions {
  return {
    configPath: values.config,
    sets: values.set ?? [],
    shortcuts: { 'state-dir': values['state-dir'], 'runtime-dir': values['runtime-dir'], 'log-level': values['log-level'] },
  };
}
