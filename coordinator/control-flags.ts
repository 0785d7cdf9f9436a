import type { ParseArgsConfig } from 'node:util';
import { CONFIG_FLAGS_USAGE, parseConfigFlags, type FlagValues } from './config/flags.js';
import { loadCoordinatorConfig } from './config/load.js';
import { findControlSocket } from './control-socket.js';

/**
 * The flags of the commands that ask the running service (`status`, `agents`, `rounds`): the
 * config flags (the config says where the socket is), --socket to name it directly, --json.
 * Not a command itself (not registered in cli.ts).
 */
export const SOCKET_FLAGS_USAGE = `${CONFIG_FLAGS_USAGE} [--socket PATH] [--json]`;

export function parseSocketFlags(argv: string[], extra: NonNullable<ParseArgsConfig['options']> = {}): { socket: string; json: boolean; values: FlagValues } {
  const { load, values } = parseConfigFlags(argv, { socket: { type: 'string' }, json: { type: 'boolean' }, ...extra });
  const socket = typeof values.socket === 'string' ? values.socket : findControlSocket(loadCoordinatorConfig(load).coordinator.runtime_dir);
  return { socket, json: values.json === true, values };
}
