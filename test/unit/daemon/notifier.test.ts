import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { notify, onNotifyError, watchdogPingMs } from '../../../agent/daemon/notifier.js';
import { tempDir } from '../../helpers/paths.js';

test('watchdog pings at half of WATCHDOG_USEC, only for this process', () => {
  assert.is(watchdogPingMs({ WATCHDOG_USEC: '30000000' }), 15_000);
  assert.is(watchdogPingMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }), 15_000);
  assert.is(watchdogPingMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid + 1) }), null);
  assert.is(watchdogPingMs({}), null);
  assert.is(watchdogPingMs({ WATCHDOG_USEC: 'soon' }), null);
  assert.is(watchdogPingMs({ WATCHDOG_USEC: '0' }), null);
});

test('outside systemd every notification is a no-op returning false', () => {
  const saved = process.env.NOTIFY_SOCKET;
  delete process.env.NOTIFY_SOCKET;
  try {
    assert.is(notify.ready('x'), false);
    assert.is(notify.watchdog(), false);
    assert.is(notify.stopping('x'), false);
  } finally {
    if (saved !== undefined) process.env.NOTIFY_SOCKET = saved;
  }
});

test('a failed send is reported to the error hook, never thrown', () => {
  const { dir, cleanup } = tempDir('icosfl-notify-unit-');
  const saved = process.env.NOTIFY_SOCKET;
  const seen: { code?: string; state: string }[] = [];
  onNotifyError((err, state) => seen.push({ code: (err as { code?: string }).code, state }));
  process.env.NOTIFY_SOCKET = join(dir, 'nobody-listens.sock');
  try {
    assert.is(notify.status('hello'), false);
    assert.is(seen.length, 1);
    assert.is(seen[0]!.state, 'STATUS=hello');
    assert.ok(seen[0]!.code === 'ENOENT' || seen[0]!.code === 'ECONNREFUSED', String(seen[0]!.code));
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
    onNotifyError(() => undefined);
    cleanup();
  }
});

test.run();
