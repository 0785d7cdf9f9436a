import { loadAddon } from './load-addon.js';

/**
 * sd_notify(3) for Node, which cannot send AF_UNIX datagrams itself: the addon sends `state`
 * (e.g. 'READY=1', 'WATCHDOG=1', 'STOPPING=1', 'STATUS=…') to $NOTIFY_SOCKET, a path or an
 * '@'-prefixed abstract socket. Returns false when $NOTIFY_SOCKET is unset (not under systemd).
 * Throws RangeError for an address it cannot use and an Error with the errno `code`
 * (ECONNREFUSED, ENOENT…) when sending fails: under Type=notify a lost READY=1 means systemd
 * kills the service at its start timeout, so the caller should hear about it.
 */
export function sdNotify(state: string): boolean {
  if (typeof state !== 'string' || state.length === 0) throw new TypeError('sdNotify: state must be a non-empty string such as "READY=1"');
  return loadAddon().sdNotify(state);
}

/**
 * How often to send WATCHDOG=1: half of $WATCHDOG_USEC (systemd's advice), in ms; undefined
 * when the watchdog is off or $WATCHDOG_PID names another process (as sd_watchdog_enabled does).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || usec === '') return undefined;
  if (!/^\d+$/.test(usec) || Number(usec) === 0) throw new RangeError(`WATCHDOG_USEC must be a positive integer (microseconds), got "${usec}"`);
  const owner = env.WATCHDOG_PID;
  if (owner !== undefined && owner !== '' && Number(owner) !== pid) return undefined;
  return Number(usec) / 2000;
}
