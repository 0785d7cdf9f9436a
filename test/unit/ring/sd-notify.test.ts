import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { sdNotify, watchdogIntervalMs } from '../../../native/sd-notify.js';
import { tempDir } from '../../helpers/paths.js';

// sd_notify against a real AF_UNIX datagram socket. Node cannot bind one, so a python3 listener
// (python3 is in .ci/run's APT_PACKAGES) binds it, prints "ready", and prints the datagram it gets.
const { dir, cleanup } = tempDir('icosfl-sdnotify-');
test.after(cleanup);

const LISTENER = `
import socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print('ready', flush=True)
s.settimeout(10)
print(s.recv(4096).decode(), flush=True)
`;

async function listen(addr: string): Promise<{ child: ChildProcess; received: Promise<string> }> {
  const child = spawn('python3', ['-c', LISTENER, addr], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (out.startsWith('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`listener exited with ${code} before binding`)));
  });
  await ready;
  const received = once(child, 'exit').then(([code]) => {
    assert.is(code, 0, 'listener got a datagram');
    return out.slice('ready\n'.length).trimEnd();
  });
  return { child, received };
}

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

test('sends the state to a socket path', async () => {
  const path = join(dir, 'notify.sock');
  const { received } = await listen(path);
  assert.is(withEnv({ NOTIFY_SOCKET: path }, () => sdNotify('READY=1\nSTATUS=sampling 16 metrics')), true);
  assert.is(await received, 'READY=1\nSTATUS=sampling 16 metrics');
});

test('sends to an abstract socket named with @', async () => {
  const name = `@icosfl-test-${process.pid}-${Date.now()}`;
  const { received } = await listen(name);
  assert.is(withEnv({ NOTIFY_SOCKET: name }, () => sdNotify('WATCHDOG=1')), true);
  assert.is(await received, 'WATCHDOG=1');
});

test('returns false when NOTIFY_SOCKET is unset or empty', () => {
  assert.is(withEnv({ NOTIFY_SOCKET: undefined }, () => sdNotify('READY=1')), false);
  assert.is(withEnv({ NOTIFY_SOCKET: '' }, () => sdNotify('READY=1')), false);
});

test('errors: bad state, unusable address, nobody listening', () => {
  assert.throws(() => sdNotify(''), (e: Error) => e instanceof TypeError && /state must be a non-empty string/.test(e.message));
  assert.throws(() => sdNotify(1 as unknown as string), TypeError);
  withEnv({ NOTIFY_SOCKET: 'relative/notify.sock' }, () =>
    assert.throws(() => sdNotify('READY=1'), (e: Error) => e instanceof RangeError && /NOTIFY_SOCKET must be an absolute path or start with '@'/.test(e.message)),
  );
  withEnv({ NOTIFY_SOCKET: '/' + 'x'.repeat(120) }, () => assert.throws(() => sdNotify('READY=1'), (e: Error) => e instanceof RangeError && /NOTIFY_SOCKET is longer than 107 bytes/.test(e.message)));
  withEnv({ NOTIFY_SOCKET: join(dir, 'nobody.sock') }, () =>
    assert.throws(() => sdNotify('READY=1'), (e: Error & { code?: string }) => e.code === 'ENOENT' && /sendto .*nobody\.sock/.test(e.message)),
  );
});

test('watchdogIntervalMs: half of WATCHDOG_USEC, only for the named pid', () => {
  assert.is(watchdogIntervalMs({}), undefined);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '' }), undefined);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }), 15_000);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '3000' }), 1.5);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, 4242), 15_000);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4243' }, 4242), undefined);
  assert.throws(() => watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }), (e: Error) => e instanceof RangeError && /WATCHDOG_USEC must be a positive integer/.test(e.message));
  assert.throws(() => watchdogIntervalMs({ WATCHDOG_USEC: '0' }), RangeError);
});

test.run();
