import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import { asNobody } from '../../helpers/as-nobody.js';
import * as assert from 'uvu/assert';
import { controlRequest } from '../../../common/control/client.js';
import { ControlServer } from '../../../common/control/server.js';
import { isIcosflError, type ErrorCode } from '../../../common/errors.js';
import { exitCode } from '../../../common/exit-codes.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, tempDir } from '../../helpers/paths.js';

/**
 * The control client's diagnoses over real unix sockets: nothing there, a socket left by a dead
 * process, a path that is no socket, a service that does not answer, a process answering in
 * another protocol version or shape, a refusal of its own, and a socket this user may not open.
 */
const { dir, cleanup } = tempDir('icosfl-control-client-');
const servers: (Server | ControlServer)[] = [];
test.after(async () => {
  for (const s of servers) await new Promise<void>((resolve) => (s instanceof ControlServer ? void s.close().then(resolve) : s.close(() => resolve())));
  cleanup();
});

async function expectCode(p: Promise<unknown>, code: ErrorCode, message: RegExp | string): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(isIcosflError(err, code), `expected ${code}, got ${String(err)}`);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** A unix-socket server that answers every line with `reply` (or never, when null). */
async function fake(name: string, reply: string | null): Promise<string> {
  const path = join(dir, name);
  const server = createServer((socket) => {
    socket.on('data', () => reply !== null && socket.write(reply));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  servers.push(server);
  return path;
}

test('no socket and a socket left by a dead process: not running, with how to start it', async () => {
  await expectCode(controlRequest(join(dir, 'absent.sock'), { cmd: 'status' }), 'DAEMON_NOT_RUNNING', /icosfl-agent is not running: there is no socket \(ENOENT\) at .*absent\.sock; start it \(systemctl start icosfl-agent\)/);
  // A socket bound by a process that is gone: the file stays, nobody listens (ECONNREFUSED).
  const stale = join(dir, 'stale.sock');
  const py = spawnSync('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`]);
  assert.is(py.status, 0, String(py.stderr));
  await expectCode(controlRequest(stale, { cmd: 'status' }), 'DAEMON_NOT_RUNNING', /is not running: nothing is listening, a socket left by a stopped process \(ECONNREFUSED\), at /);
});

test('a path that is no socket is named as what it is', async () => {
  const file = join(dir, 'plain.txt');
  writeFileSync(file, 'x');
  await expectCode(controlRequest(file, { cmd: 'status' }), 'DAEMON_NOT_RUNNING', `${file} is a regular file, not icosfl-agent's control socket`);
  await expectCode(controlRequest(dir, { cmd: 'status' }, 3000, { name: 'icosfl-coordinator', unit: 'icosfl-coordinator' }), 'DAEMON_NOT_RUNNING', `${dir} is a directory, not icosfl-coordinator's control socket`);
  // predict does not fall back to the offline model then: the --socket is wrong, not the daemon absent.
  const r = spawnSync(process.execPath, [join(DIST, 'agent', 'cli.js'), 'predict', '--socket', file, '--state-dir', join(dir, 'state')], { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, exitCode('UNAVAILABLE'), r.stderr);
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, `${file} is a regular file, not icosfl-agent's control socket`);
});

test('a service that accepts but never answers is hung, not absent', async () => {
  const silent = await fake('silent.sock', null);
  await expectCode(controlRequest(silent, { cmd: 'status' }, 300), 'DAEMON_NOT_RUNNING', /did not answer within 300 ms; it may be hung/);
});

test('an answer of another protocol version or shape is CONTROL_PROTOCOL_MISMATCH', async () => {
  const cases: [string, string, RegExp][] = [
    ['old.sock', '{"ok":true,"result":{}}\n', /no control protocol version/],
    ['v2.sock', '{"v":2,"ok":true,"result":{}}\n', /speaks control protocol v2, this command v1/],
    ['text.sock', 'HTTP/1.1 400 Bad Request\n', /not JSON/],
    ['shape.sock', '{"v":1,"status":"fine"}\n', /not of the control protocol shape/],
    ['array.sock', '[1,2]\n', /not a JSON object/],
  ];
  for (const [name, reply, why] of cases) {
    const path = await fake(name, reply);
    await expectCode(controlRequest(path, { cmd: 'status' }), 'CONTROL_PROTOCOL_MISMATCH', why);
  }
});

test("the service's own refusals keep their code, or CONTROL_REFUSED for codes of the socket itself", async () => {
  const server = new ControlServer(join(dir, 'real.sock'), pino({ level: 'silent' }));
  server.handle('broken', async () => {
    throw new Error('disk on fire');
  });
  await server.listen();
  servers.push(server);
  await expectCode(controlRequest(server.path, { cmd: 'nope' }), 'CONTROL_REFUSED', /daemon refused 'nope': unknown cmd "nope"; known: broken \(UNKNOWN_COMMAND\)/);
  await expectCode(controlRequest(server.path, { cmd: 'broken' }), 'CONTROL_REFUSED', /disk on fire \(FAILED\)/);
});

test('EACCES on the socket is a permission problem naming the group, through the real CLI (exit NO_PERMISSION)', async () => {
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { mode: 0o750 });
  const server = new ControlServer(join(runDir, 'agent.sock'), pino({ level: 'silent' }));
  server.handle('status', async () => ({}));
  await server.listen();
  servers.push(server);
  chmodSync(dir, 0o755);
  // root passes every mode check: the CLI runs as nobody then; otherwise the socket is made 000.
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) chmodSync(server.path, 0o000);
  const nobody = asNobody();
  let r: SpawnSyncReturns<string>;
  try {
    r = spawnSync(process.execPath, [join(DIST, 'agent', 'cli.js'), 'status', '--socket', server.path], {
      encoding: 'utf8',
      cwd: '/',
      env: { PATH: process.env.PATH ?? '' },
      timeout: 30_000,
      ...nobody.spawn,
    });
  } finally {
    nobody.restore();
  }
  assert.is(r.status, exitCode('NO_PERMISSION'), r.stderr);
  assertCleanStderr(r.stderr);
  assert.match(r.stderr, `[CONTROL_PERMISSION_DENIED] cannot open icosfl-agent's control socket ${server.path}: permission denied (EACCES); run as root or as a member of group icosfl`);
  assert.not.match(r.stderr, /is it running|not running/);
});

test.run();
