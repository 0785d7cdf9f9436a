import { sdNotify } from '../../native/sd-notify.js';

/**
 * The daemon's side of the systemd notify protocol, over the native addon (Node cannot send
 * AF_UNIX datagrams). Every call is a no-op returning false outside systemd ($NOTIFY_SOCKET
 * unset). The unit needs NotifyAccess=main (the default): these come from the main PID.
 * WATCHDOG=1 is not sent from here by the daemon but from the sampler's worker thread (same PID),
 * gated on both threads' health: agent/sampler/watchdog-gate.ts. `notify.watchdog` stays for
 * other callers.
 */
let reportError: (err: unknown, state: string) => void = () => undefined;

/** Where a failed send is reported (the daemon's log); a failed notification never stops the daemon. */
export function onNotifyError(fn: (err: unknown, state: string) => void): void {
  reportError = fn;
}

function send(state: string): boolean {
  try {
    return sdNotify(state);
  } catch (err) {
    reportError(err, state);
    return false;
  }
}

export const notify = {
  ready: (status: string) => send(`READY=1\nSTATUS=${status}`),
  status: (status: string) => send(`STATUS=${status}`),
  watchdog: () => send('WATCHDOG=1'),
  /** MONOTONIC_USEC is what systemd ≥ 253 needs for Type=notify-reload; older ones ignore it. */
  reloading: () => send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`),
  stopping: (status: string) => send(`STOPPING=1\nSTATUS=${status}`),
};

/**
 * How often to send WATCHDOG=1: half of $WATCHDOG_USEC (systemd's advice, leaving a full half
 * period of slack), or null when no watchdog is set or it is meant for another process.
 */
export function watchdogPingMs(env: NodeJS.ProcessEnv = process.env): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}
