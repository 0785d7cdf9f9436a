import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { IcosflError } from '../errors.js';
import type { Logger } from '../log.js';
import { errorReply, okReply } from './protocol.js';

/**
 * The daemon's control socket: newline-delimited JSON over a unix socket in the runtime
 * directory. A request is `{"cmd":"status", ...args}`; the answer is one line (protocol.ts),
 * `{"v":1,"ok":true,"result":…}` or `{"v":1,"ok":false,"error":{"code":…,"message":…}}`. Handlers are
 * registered by name, so the trainer adds `predict` without touching this file.
 * Only the service's user (and group) can connect: the socket is mode 0660 in a 0750 directory.
 */
export type ControlHandler = (req: Record<string, unknown>) => Promise<unknown>;

export interface ControlRegistry {
  handle(name: string, fn: ControlHandler): void;
}

/** A request line longer than this is refused: the socket must not buffer without bound. */
const MAX_LINE_BYTES = 1 << 20;

export class ControlServer implements ControlRegistry {
  private readonly handlers = new Map<string, ControlHandler>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    /** Who serves it, for the message when another process already answers there. */
    private readonly service = 'icosfl-agent',
  ) {}

  handle(name: string, fn: ControlHandler): void {
    if (typeof name !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(name)) throw new TypeError(`control.handle: name must be a lower-case word, got ${JSON.stringify(name)}`);
    if (typeof fn !== 'function') throw new TypeError(`control.handle('${name}'): fn must be a function`);
    if (this.handlers.has(name)) throw new RangeError(`control.handle: '${name}' is already registered`);
    this.handlers.set(name, fn);
  }

  has(name: string): boolean {
    return this.handlers.has(name);
  }

  /** Removes a handler (a training job that stops takes its `predict` with it). */
  unhandle(name: string): void {
    this.handlers.delete(name);
  }

  async listen(): Promise<void> {
    await removeStaleSocket(this.path, this.service);
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o660);
    server.on('error', (err) => this.logger.error({ err }, 'control socket error'));
    this.server = server;
  }

  private serve(socket: Socket): void {
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
        if (line.trim()) void this.answer(line).then((out) => socket.writable && socket.write(out + '\n'));
      }
    });
  }

  private async answer(line: string): Promise<string> {
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
    try {
      return okReply(await handler(req));
    } catch (err) {
      const e = err as Error & { code?: unknown };
      this.logger.warn({ err, cmd: req.cmd }, 'control command failed');
      // Bad arguments travel as INVALID_ARGUMENT so the client can raise a RangeError (exit 64).
      const code = typeof e.code === 'string' ? e.code : err instanceof RangeError || err instanceof TypeError ? 'INVALID_ARGUMENT' : 'FAILED';
      return errorReply(code, e.message);
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
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
