import { writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IcosflError } from '../../../common/errors.js';
import { controlRequest } from '../../../agent/daemon/control-client.js';
import { ControlServer } from '../../../common/control/server.js';
import { tempDir } from '../../helpers/paths.js';

/** The control socket over a real unix socket: dispatch by name, error answers, stale sockets. */
const { dir, cleanup } = tempDir('icosfl-control-');
const log = pino({ level: 'silent' });
const servers: ControlServer[] = [];
test.after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  cleanup();
});

async function serve(name: string): Promise<ControlServer> {
  const s = new ControlServer(join(dir, name), log);
  s.handle('echo', async (req) => ({ got: req.value }));
  s.handle('boom', async () => {
    throw new IcosflError('RING_NOT_ENOUGH_DATA', 'not enough samples');
  });
  s.handle('bad-arg', async () => {
    throw new RangeError('horizon must be an integer from 1 to 3, got 9');
  });
  await s.listen();
  servers.push(s);
  return s;
}

/** Sends raw text and returns the first answer line, parsed. */
function raw(path: string, text: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = createConnection(path, () => c.write(text));
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        c.end();
        resolve(JSON.parse(buf.slice(0, buf.indexOf('\n'))) as Record<string, unknown>);
      }
    });
    c.on('error', reject);
  });
}

test('handlers answer by name; several requests on one connection each get a line', async () => {
  const s = await serve('a.sock');
  assert.equal(await controlRequest(s.path, { cmd: 'echo', value: 42 }), { got: 42 });
  const two = await new Promise<string[]>((resolve) => {
    const c = createConnection(s.path, () => c.write('{"cmd":"echo","value":1}\n{"cmd":"echo","value":2}\n'));
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n').filter(Boolean);
      if (lines.length === 2) {
        c.end();
        resolve(lines);
      }
    });
  });
  assert.equal(two.map((l) => (JSON.parse(l) as { result: { got: number } }).result.got).sort(), [1, 2]);
});

test('malformed lines, unknown commands and failing handlers get error answers, the server keeps going', async () => {
  const s = await serve('b.sock');
  assert.equal(await raw(s.path, 'not json\n'), { v: 1, ok: false, error: { code: 'BAD_REQUEST', message: 'a request is one JSON object per line, e.g. {"cmd":"status"}' } });
  assert.equal((await raw(s.path, '[1]\n')).ok, false);
  const unknown = (await raw(s.path, '{"cmd":"nope"}\n')) as { error: { code: string; message: string } };
  assert.is(unknown.error.code, 'UNKNOWN_COMMAND');
  assert.match(unknown.error.message, 'known: echo, boom, bad-arg');
  const boom = (await raw(s.path, '{"cmd":"boom"}\n')) as { error: { code: string; message: string } };
  assert.equal(boom.error, { code: 'RING_NOT_ENOUGH_DATA', message: 'not enough samples' });
  try {
    await controlRequest(s.path, { cmd: 'boom' });
    assert.unreachable('controlRequest rethrows an error answer');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'RING_NOT_ENOUGH_DATA');
    assert.instance(err, IcosflError, 'a domain code comes back as an IcosflError, so exit codes match');
    assert.match((err as Error).message, "daemon refused 'boom': not enough samples");
  }
  const badArg = (await raw(s.path, '{"cmd":"bad-arg"}\n')) as { error: { code: string } };
  assert.is(badArg.error.code, 'INVALID_ARGUMENT');
  try {
    await controlRequest(s.path, { cmd: 'bad-arg' });
    assert.unreachable('controlRequest rethrows an argument error');
  } catch (err) {
    assert.instance(err, RangeError);
    assert.match((err as Error).message, "daemon refused 'bad-arg': horizon must be");
  }
  assert.equal(await controlRequest(s.path, { cmd: 'echo', value: 'still up' }), { got: 'still up' });
});

test('registration misuse is a TypeError or RangeError naming the problem; unhandle removes a command', async () => {
  const s = await serve('c.sock');
  assert.throws(() => s.handle('Bad Name', async () => 1), /name must be a lower-case word/);
  assert.throws(() => s.handle('x', 'nope' as never), /fn must be a function/);
  assert.throws(() => s.handle('echo', async () => 1), /'echo' is already registered/);
  s.unhandle('echo');
  assert.is(((await raw(s.path, '{"cmd":"echo"}\n')) as { error: { code: string } }).error.code, 'UNKNOWN_COMMAND');
  s.handle('echo', async () => 'again');
  assert.is(await controlRequest(s.path, { cmd: 'echo' }), 'again');
});

test('a stale socket file is replaced; a live one is refused', async () => {
  const stale = join(dir, 'stale.sock');
  writeFileSync(stale, '');
  const s = new ControlServer(stale, log);
  s.handle('echo', async () => 'fresh');
  await s.listen();
  servers.push(s);
  assert.is(await controlRequest(stale, { cmd: 'echo' }), 'fresh');
  const second = new ControlServer(stale, log);
  try {
    await second.listen();
    assert.unreachable('a second server on a live socket must fail');
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.match((err as Error).message, 'another icosfl-agent is already answering');
  }
});

test('no daemon: DAEMON_NOT_RUNNING naming the socket', async () => {
  try {
    await controlRequest(join(dir, 'absent.sock'), { cmd: 'status' });
    assert.unreachable('expected DAEMON_NOT_RUNNING');
  } catch (err) {
    assert.is((err as IcosflError).code, 'DAEMON_NOT_RUNNING');
    assert.match((err as Error).message, join(dir, 'absent.sock'));
    assert.match((err as Error).message, 'ENOENT');
  }
});

test('roles: a request above a socket\'s role is CONTROL_FORBIDDEN naming the socket that serves it; the higher socket answers both', async () => {
  const viewer = join(dir, 'viewer.sock');
  const operator = join(dir, 'operator.sock');
  const s = new ControlServer(viewer, log, 'icosfl-coordinator', [
    { path: viewer, role: 'viewer', how: 'group v' },
    { path: operator, role: 'operator', how: 'group o' },
  ]);
  s.handle('look', async () => 'seen');
  s.handle('act', async () => 'done', 'operator');
  await s.listen();
  servers.push(s);
  assert.equal(await raw(viewer, '{"cmd":"look"}\n'), { v: 1, ok: true, result: 'seen' });
  assert.equal(await raw(operator, '{"cmd":"look"}\n'), { v: 1, ok: true, result: 'seen' });
  assert.equal(await raw(operator, '{"cmd":"act"}\n'), { v: 1, ok: true, result: 'done' });
  assert.equal(await raw(viewer, '{"cmd":"act"}\n'), {
    v: 1,
    ok: false,
    error: { code: 'CONTROL_FORBIDDEN', message: "'act' needs the operator role; it is served on operator.sock (group o); viewer.sock is the viewer socket and answers look" },
  });
  assert.throws(() => s.handle('x', async () => 1, 'admin' as never), /control\.handle\('x'\): role must be one of viewer, operator, got "admin"/);
  assert.throws(() => new ControlServer(viewer, log, 'x', [{ path: viewer, role: 'root' as never, how: '' }]), /ControlServer: role must be one of viewer, operator/);
});

test.run();
