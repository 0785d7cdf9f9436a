import { createConnection } from 'node:net';
import { ERROR_CODES, IcosflError, type ErrorCode } from '../errors.js';

/**
 * The control socket's client side, shared by both CLIs (server.ts has the protocol).
 * Sends one request to the running daemon and returns its `result`. No socket, nobody
 * listening, or no answer within `timeoutMs` → DAEMON_NOT_RUNNING (exit code 69); an error
 * answer is rethrown with the daemon's code and message.
 */
export async function controlRequest(socketPath: string, req: { cmd: string } & Record<string, unknown>, timeoutMs = 3000, service: { name: string; unit: string } = { name: 'icosfl-agent', unit: 'icosfl-agent' }): Promise<unknown> {
  const line = await new Promise<string>((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    const fail = (why: string, cause?: unknown) => {
      socket.destroy();
      reject(new IcosflError('DAEMON_NOT_RUNNING', `no ${service.name} answered on ${socketPath} (${why}); is it running? (systemctl status ${service.unit})`, { cause }));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(req) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.end();
        resolve(buffer.slice(0, nl));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(err.code ?? err.message, err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!buffer.includes('\n')) fail('connection closed without an answer');
    });
  });
  return parseControlReply(line, req.cmd, socketPath, service.name);
}

/**
 * One reply line → its result, or the daemon's error rebuilt. Whatever else answers on the
 * socket (not JSON, not an object, no boolean `ok`) is DAEMON_NOT_RUNNING: it is no daemon of
 * ours; before, such a line escaped as a SyntaxError or TypeError (issue 21, test/unit/fuzz/control).
 */
export function parseControlReply(line: string, cmd: string, socketPath = 'the control socket', serviceName = 'icosfl-agent'): unknown {
  let answer: { ok?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } | null };
  try {
    answer = JSON.parse(line) as typeof answer;
  } catch (cause) {
    throw new IcosflError('DAEMON_NOT_RUNNING', `what answered on ${socketPath} is not ${serviceName} (a reply that is not JSON)`, { cause });
  }
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer) || typeof answer.ok !== 'boolean') {
    throw new IcosflError('DAEMON_NOT_RUNNING', `what answered on ${socketPath} is not ${serviceName} (a reply without a boolean "ok")`);
  }
  if (!answer.ok) {
    // Rebuild the daemon's error as the class it had there, so exit codes match the offline path.
    const error = answer.error !== null && typeof answer.error === 'object' ? answer.error : {};
    const code = typeof error.code === 'string' ? error.code : undefined;
    const message = `daemon refused '${cmd}': ${typeof error.message === 'string' ? error.message : 'unknown error'}`;
    if (code === 'INVALID_ARGUMENT') throw new RangeError(message);
    if (code !== undefined && Object.hasOwn(ERROR_CODES, code)) throw new IcosflError(code as ErrorCode, message);
    const err = new Error(message) as Error & { code?: string };
    err.code = code;
    throw err;
  }
  return answer.result;
}
