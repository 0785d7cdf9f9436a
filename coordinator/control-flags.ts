import type { FlagDefs, FlagValues } from '../common/cli-flags.js';
import { CONFIG_FLAGS, loadOptionsOf } from './config/flags.js';
import { loadCoordinatorConfig } from './config/load.js';
import { findControlSocket } from './control-socket.js';

/**
 * The flags of the commands that ask the running service (`status`, `agents`, `rounds`): the
 * config flags (the config says where the socket is), --socket to name it directly, --json.
 * Not a command itself (not registered in cli.ts).
 */
export const SOCKET_FLAGS = {
  ...CONFIG_FLAGS,
  socket: { type: 'string', value: 'PATH', description: "the service's control socket", defaultText: '<coordinator.runtime_dir>/coordinator.sock, else /run/icosfl-coordinator/coordinator.sock' },
  json: { type: 'boolean', description: 'print the answer as JSON instead of a table' },
} as const satisfies FlagDefs;

/** The socket to ask: --socket, else the one the config names. */
export function socketOf(values: Omit<FlagValues<typeof SOCKET_FLAGS>, 'json'>): string {
  return typeof values.socket === 'string' ? values.socket : findControlSocket(loadCoordinatorConfig(loadOptionsOf(values)).coordinator.runtime_dir);
}
