import { chmodSync, unlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { IcosflError } from '../errors.js';
import type { Logger } from '../log.js';
import { errorReply, okReply } from './protocol.js';

/**
 * The daemon's control socket: newline-delimited JSON over a unix socket in the runtime
 * directory. A request is `{"cmd":"status", ...args}`; the answer is one line (protocol.ts),
 * `{"v":1,"ok":true,"result":…}` or `{"v":1,"ok":false,"error":{"code":…,"message":…}}`. Handlers are
 * registered by name, so the trainer adds `predict` without touching this file.
 * Only the service's user (and group) can connect: each socket is mode 0660. The agent has one
 * socket (in a 0750 directory); the coordinator one per role (coordinator/control-socket.ts).
 */
export type ControlHandler = (req: Record<string, unknown>) => Promise<unknown>;

/**
 * Who a socket serves, lowest first: a request answers on a socket whose role is at least the
 * request's. Node cannot read SO_PEERCRED, so the kernel's permission check on each socket file
 * is the authentication: a role is a socket with its own group (SECURITY.md, docs/decisions.md D16).
 */
export const CONTROL_ROLES = ['viewer', 'operator'] as const;
export type ControlRole = (typeof CONTROL_ROLES)[number];

export interface ControlRegistry {
  handle(name: string, fn: ControlHandler, role?: ControlRole): void;
}

/** One more socket of the same service, serving the requests of `role` and below. */
export interface ControlListener {
  path: string;
  role: ControlRole;
  /** For the refusal's message: how one gets this socket's role (its group). */
  how: string;
}

/** A request line longer than this is refused: the socket must not buffer without bound. */
const MAX_LINE_BYTES = 1 << 20;

export class ControlServer implements ControlRegistry {
  private readonly handlers = new Map<string, { fn: ControlHandler; role: ControlRole }>();
  private readonly sockets = new Set<Socket>();
  private readonly servers: Server[] = [];
  private readonly listeners: ControlListener[];

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    /** Who serves it, for the message when another process already answers there. */
    private readonly service = 'icosfl-agent',
    /** Sockets by role; default one socket at `path` serving every request (the agent's). */
    listeners?: ControlListener[],
  ) {
    this.listeners = listeners ?? [{ path, role: 'operator', how: 'its group' }];
    for (const l of this.listeners) if (!CONTROL_ROLES.includes(l.role)) throw new RangeError(`ControlServer: role must be one of ${CONTROL_ROLES.join(', ')}, got ${JSON.stringify(l.role)}`);
  }

  /** `role`: the least role whose socket answers it (default viewer: every socket). */
  handle(name: string, fn: ControlHandler, role: ControlRole = 'viewer'): void {
    if (typeof name !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(name)) throw new TypeError(`control.handle: name must be a lower-case word, got ${JSON.stringify(name)}`);
    if (typeof fn !== 'function') throw new TypeError(`control.handle('${name}'): fn must be a function`);
    if (!CONTROL_ROLES.includes(role)) throw new RangeError(`control.handle('${name}'): role must be one of ${CONTROL_ROLES.join(', ')}, got ${JSON.stringify(role)}`);
    if (this.handlers.has(name)) throw new RangeError(`control.handle: '${name}' is already registered`);
    this.handlers.set(name, { fn, role });
  }

  has(name: string): boolean {
    return this.handlers.has(name);
  }

  /** Removes a handler (a training job that stops takes its `predict` with it). */
  unhandle(name: string): void {
    this.handlers.delete(name);
  }

  async listen(): Promise<void> {
    for (const l of this.listeners) {
      await removeStaleSocket(l.path, this.service);
      const server = createServer((socket) => this.serve(socket, l));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.path, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.servers.push(server);
      // 0660: who may connect is the socket's owner and group; the deployment sets the group per role.
      chmodSync(l.path, 0o660);
      server.on('error', (err) => this.logger.error({ err, socket: l.path }, 'control socket error'));
    }
  }

  private serve(socket: Socket, listener: ControlListener): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_LINE_BYTES) {
        socket.end(errorReply('REQUEST_TOO_LARGE', `a request line must be under ${MAX_LINE_BYTES} bytes`) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim()) void this.answer(line, listener).then((out) => socket.writable && socket.write(out + '\n'));
      }
    });
  }

  private async answer(line: string, listener: ControlListener): Promise<string> {
    let req: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      req = parsed as Record<string, unknown>;
    } catch {
      return errorReply('BAD_REQUEST', 'a request is one JSON object per line, e.g. {"cmd":"status"}');
    }
    const handler = typeof req.cmd === 'string' ? this.handlers.get(req.cmd) : undefined;
    if (!handler) {
      return errorReply('UNKNOWN_COMMAND', `unknown cmd ${JSON.stringify(req.cmd)}; known: ${[...this.handlers.keys()].join(', ')}`);
    }
    if (CONTROL_ROLES.indexOf(handler.role) > CONTROL_ROLES.indexOf(listener.role)) return this.forbidden(req.cmd as string, handler.role, listener);
    try {
      return okReply(await handler.fn(req));
    } catch (err) {
      const e = err as Error & { code?: unknown };
      this.logger.warn({ err, cmd: req.cmd }, 'control command failed');
      // Bad arguments travel as INVALID_ARGUMENT so the client can raise a RangeError (exit 64).
      const code = typeof e.code === 'string' ? e.code : err instanceof RangeError || err instanceof TypeError ? 'INVALID_ARGUMENT' : 'FAILED';
      return errorReply(code, e.message);
    }
  }

  /** A request above this socket's role: which socket serves it, and what this one serves. */
  private forbidden(cmd: string, role: ControlRole, listener: ControlListener): string {
    const serving = this.listeners.find((l) => CONTROL_ROLES.indexOf(l.role) >= CONTROL_ROLES.indexOf(role));
    const here = [...this.handlers].filter(([, h]) => CONTROL_ROLES.indexOf(h.role) <= CONTROL_ROLES.indexOf(listener.role)).map(([n]) => n);
    this.logger.warn({ event: 'control-forbidden', cmd, role, socket: listener.path }, 'control request refused: the socket lacks its role');
    const where = serving ? `; it is served on ${basename(serving.path)} (${serving.how})` : '';
    return errorReply('CONTROL_FORBIDDEN', `'${cmd}' needs the ${role} role${where}; ${basename(listener.path)} is the ${listener.role} socket and answers ${here.join(', ')}`);
  }

  async close(): Promise<void> {
    const servers = this.servers.splice(0);
    if (servers.length === 0) return;
    for (const s of this.sockets) s.destroy();
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/**
 * A socket file left by a daemon that was killed stops the next listen() with EADDRINUSE. It is
 * removed only when nothing answers on it; a live daemon on it is an error.
 */
async function removeStaleSocket(path: string, service: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new IcosflError(service === 'icosfl-agent' ? 'RING_LOCKED' : 'COORDINATOR_BUSY', `another ${service} is already answering on ${path}`);
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
