import { statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { ERROR_CODES, IcosflError, type ErrorCode } from '../errors.js';
import { errnoWords } from '../system-errors.js';
import { CONTROL_PROTOCOL_VERSION, parseReply } from './protocol.js';

/** Who answers on a socket, for the messages: the unit to ask systemd about, the group that may connect. */
export interface ControlService {
  name: string;
  unit: string;
  /** The socket's group (0660 in a 0750 directory); absent where only root may connect. */
  group?: string;
}

/** What kind of file a path is, when it is not a socket (`--socket /etc/passwd`). */
function notASocket(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (st.isSocket()) return undefined;
    return st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'not a socket';
  } catch {
    return undefined;
  }
}

/**
 * Why a connection failed, rightly diagnosed: EACCES is a permission problem (connecting needs
 * the socket's group), ENOENT/ECONNREFUSED mean nothing runs there, a path that is no socket is
 * a wrong --socket, and silence is a hung service.
 */
function connectError(socketPath: string, service: ControlService, why: { err?: NodeJS.ErrnoException; timeoutMs?: number; closed?: boolean }): IcosflError {
  const { err } = why;
  const status = `systemctl status ${service.unit}`;
  if (err?.code === 'EACCES' || err?.code === 'EPERM') {
    const who = service.group ? `run as root or as a member of group ${service.group} (usermod -aG ${service.group} USER, then log in again)` : 'run as root (sudo)';
    return new IcosflError('CONTROL_PERMISSION_DENIED', `cannot open ${service.name}'s control socket ${socketPath}: ${errnoWords(err)}; ${who}`, { cause: err });
  }
  const kind = notASocket(socketPath);
  if (kind) return new IcosflError('DAEMON_NOT_RUNNING', `${socketPath} is ${kind}, not ${service.name}'s control socket; name the socket (--socket PATH) or leave --socket out`, { cause: err, details: { notASocket: true } });
  if (why.timeoutMs !== undefined) return new IcosflError('DAEMON_NOT_RUNNING', `${service.name} on ${socketPath} did not answer within ${why.timeoutMs} ms; it may be hung or overloaded (${status})`);
  if (why.closed) return new IcosflError('DAEMON_NOT_RUNNING', `${service.name} on ${socketPath} closed the connection without an answer; see its log (${status})`);
  const what = err?.code === 'ENOENT' ? 'there is no socket (ENOENT)' : err?.code === 'ECONNREFUSED' ? 'nothing is listening, a socket left by a stopped process (ECONNREFUSED),' : errnoWords(err ?? {});
  return new IcosflError('DAEMON_NOT_RUNNING', `${service.name} is not running: ${what} at ${socketPath}; start it (systemctl start ${service.unit}) or name its socket with --socket`, { cause: err });
}

/**
 * The control socket's client side, shared by both CLIs (server.ts serves, protocol.ts has the
 * wire rules). Sends one request to the running service and returns its `result`. Failing to
 * connect is DAEMON_NOT_RUNNING or CONTROL_PERMISSION_DENIED, an answer of another protocol
 * CONTROL_PROTOCOL_MISMATCH; an error answer is rethrown with the service's code and message.
 */
export async function controlRequest(socketPath: string, req: { cmd: string } & Record<string, unknown>, timeoutMs = 3000, service: ControlService = { name: 'icosfl-agent', unit: 'icosfl-agent', group: 'icosfl' }): Promise<unknown> {
  const line = await new Promise<string>((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    let settled = false;
    const fail = (why: Parameters<typeof connectError>[2]) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(connectError(socketPath, service, why));
    };
    const timer = setTimeout(() => fail({ timeoutMs }), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify({ v: CONTROL_PROTOCOL_VERSION, ...req }) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl >= 0 && !settled) {
        settled = true;
        clearTimeout(timer);
        socket.end();
        resolve(buffer.slice(0, nl));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail({ err });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!buffer.includes('\n')) fail({ closed: true });
    });
  });
  return parseControlReply(line, req.cmd, socketPath, service.name);
}

/**
 * One reply line → its result, or the service's error rebuilt. Whatever else answers on the
 * socket (not JSON, not of the control protocol's shape or version) is CONTROL_PROTOCOL_MISMATCH;
 * before, such a line escaped as a SyntaxError or TypeError (test/unit/fuzz/control).
 */
export function parseControlReply(line: string, cmd: string, socketPath = 'the control socket', serviceName = 'icosfl-agent'): unknown {
  const parsed = parseReply(line);
  if ('mismatch' in parsed) {
    throw new IcosflError('CONTROL_PROTOCOL_MISMATCH', `the process on ${socketPath} is not a compatible ${serviceName}: ${parsed.mismatch}; run the same icosfl release on both sides (${serviceName} --version)`);
  }
  const answer = parsed.reply;
  if (!answer.ok) {
    // Rebuild the service's error as the class it had there, so exit codes match the offline path.
    const { code } = answer.error;
    const message = `daemon refused '${cmd}': ${answer.error.message}`;
    if (code === 'INVALID_ARGUMENT') throw new RangeError(message);
    // hasOwn, not `in`: 'toString' is in every object (found by the fuzz test).
    if (Object.hasOwn(ERROR_CODES, code)) throw new IcosflError(code as ErrorCode, message);
    throw new IcosflError('CONTROL_REFUSED', `${message} (${code})`);
  }
  return answer.result;
}
