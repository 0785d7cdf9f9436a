import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../common/control/client.js';
import type { ControlListener, ControlRole } from '../common/control/server.js';

/**
 * Where the coordinator's control socket is, and the one way the CLI asks it something (the
 * protocol is common/control/server.ts). No service answering → DAEMON_NOT_RUNNING (exit 69).
 */
export const CONTROL_SOCKET_NAME = 'coordinator.sock';

/**
 * One socket per role (SECURITY.md "Roles"): the viewer socket answers status, agents, rounds;
 * the operator socket also pause and resume. Admin work (keys, enrolment) is done on the files,
 * as root. The unit's ExecStartPost= gives each socket its group, which the service itself cannot
 * (PrivateUsers= maps no other group into its namespace).
 */
export const ROLE_SOCKETS: Record<ControlRole, { name: string; group: string }> = {
  viewer: { name: CONTROL_SOCKET_NAME, group: 'icosfl-viewers' },
  operator: { name: 'operator.sock', group: 'icosfl-operators' },
};

/** Where the packaged unit's service listens (RuntimeDirectory=icosfl-coordinator). */
export const SYSTEMD_RUNTIME_DIR = '/run/icosfl-coordinator';
export const SYSTEMD_SOCKET = join(SYSTEMD_RUNTIME_DIR, CONTROL_SOCKET_NAME);

export function controlSocketPath(runtimeDir: string, role: ControlRole = 'viewer'): string {
  return join(runtimeDir, ROLE_SOCKETS[role].name);
}

/** The service's sockets, each with the group that gets its role. */
export function controlListeners(runtimeDir: string): ControlListener[] {
  return (Object.keys(ROLE_SOCKETS) as ControlRole[]).map((role) => ({ path: controlSocketPath(runtimeDir, role), role, how: `group ${ROLE_SOCKETS[role].group}, or root` }));
}

/**
 * The configured runtime directory's socket, or the systemd service's when nothing is there: an
 * operator's shell lacks the $RUNTIME_DIRECTORY systemd gives the service.
 */
export function findControlSocket(runtimeDir: string, role: ControlRole = 'viewer'): string {
  const configured = controlSocketPath(runtimeDir, role);
  const systemd = controlSocketPath(SYSTEMD_RUNTIME_DIR, role);
  return !existsSync(configured) && existsSync(systemd) ? systemd : configured;
}

/** The role's group names who may connect (root always may). */
const serviceOf = (role: ControlRole) => ({ name: 'icosfl-coordinator', unit: 'icosfl-coordinator', group: ROLE_SOCKETS[role].group });

export function coordinatorRequest(socketPath: string, req: { cmd: string } & Record<string, unknown>, timeoutMs = 3000, role: ControlRole = 'viewer'): Promise<unknown> {
  return controlRequest(socketPath, req, timeoutMs, serviceOf(role));
}
