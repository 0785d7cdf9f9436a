import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../common/control/client.js';

/**
 * Where the coordinator's control socket is, and the one way the CLI asks it something (the
 * protocol is common/control/server.ts). No service answering → DAEMON_NOT_RUNNING (exit 69).
 */
export const CONTROL_SOCKET_NAME = 'coordinator.sock';

/** Where the packaged unit's service listens (RuntimeDirectory=icosfl-coordinator). */
export const SYSTEMD_SOCKET = '/run/icosfl-coordinator/coordinator.sock';

export function controlSocketPath(runtimeDir: string): string {
  return join(runtimeDir, CONTROL_SOCKET_NAME);
}

/**
 * The configured runtime directory's socket, or the systemd service's when nothing is there: an
 * operator's shell lacks the $RUNTIME_DIRECTORY systemd gives the service.
 */
export function findControlSocket(runtimeDir: string): string {
  const configured = controlSocketPath(runtimeDir);
  return !existsSync(configured) && existsSync(SYSTEMD_SOCKET) ? SYSTEMD_SOCKET : configured;
}

// No group: the unit's DynamicUser owns a 0750 runtime directory, so only root may connect.
const SERVICE = { name: 'icosfl-coordinator', unit: 'icosfl-coordinator' };

export function coordinatorRequest(socketPath: string, req: { cmd: string } & Record<string, unknown>, timeoutMs = 3000): Promise<unknown> {
  return controlRequest(socketPath, req, timeoutMs, SERVICE);
}
