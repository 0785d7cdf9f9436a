import type { FlagDefs, FlagValues } from '../common/cli-flags.js';
import { CONFIG_FLAGS, loadOptionsOf } from './config/flags.js';
import { loadCoordinatorConfig } from './config/load.js';
import type { ControlRole } from '../common/control/server.js';
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

/** `pause` and `resume` ask the operator socket (control-socket.ts ROLE_SOCKETS). */
export const OPERATOR_SOCKET_FLAGS = {
  ...SOCKET_FLAGS,
  socket: { ...SOCKET_FLAGS.socket, description: "the service's operator control socket (group icosfl-operators)", defaultText: '<coordinator.runtime_dir>/operator.sock, else /run/icosfl-coordinator/operator.sock' },
} as const satisfies FlagDefs;

/** The socket to ask: --socket, else the role's socket in the directory the config names. */
export function socketOf(values: Omit<FlagValues<typeof SOCKET_FLAGS>, 'json'>, role: ControlRole = 'viewer'): string {
  return typeof values.socket === 'string' ? values.socket : findControlSocket(loadCoordinatorConfig(loadOptionsOf(values)).coordinator.runtime_dir, role);
}
