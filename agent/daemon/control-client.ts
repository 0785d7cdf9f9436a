import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The control socket's file name inside the runtime directory. */
export const CONTROL_SOCKET_NAME = 'agent.sock';

export function controlSocketPath(runtimeDir: string): string {
  return join(runtimeDir, CONTROL_SOCKET_NAME);
}

/** Where the packaged unit's daemon listens (RuntimeDirectory=icosfl in systemd/icosfl-agent.service). */
export const SYSTEMD_SOCKET = '/run/icosfl/agent.sock';

/**
 * The socket a client should use: the configured runtime directory's, or, when nothing is there,
 * the systemd service's. An operator's shell lacks the $RUNTIME_DIRECTORY that systemd gives the
 * service, so without this `icosfl-agent status` would look in <state_dir>/run and miss it.
 */
export function findControlSocket(runtimeDir: string): string {
  const configured = controlSocketPath(runtimeDir);
  return !existsSync(configured) && existsSync(SYSTEMD_SOCKET) ? SYSTEMD_SOCKET : configured;
}

export { controlRequest } from '../../common/control/client.js';
