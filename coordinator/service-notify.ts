import { sdNotify, watchdogIntervalMs } from '../native/sd-notify.js';
import type { Logger } from '../common/log.js';

/**
 * The service's side of the systemd notify protocol (Type=notify, NotifyAccess=main). Outside
 * systemd ($NOTIFY_SOCKET unset) every call is a no-op that never loads the native addon; a
 * failed send is logged once per kind of message and never stops the service.
 */
export class ServiceNotifier {
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #failed = new Set<string>();

  constructor(logger: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.#log = logger;
    this.#env = env;
  }

  get enabled(): boolean {
    return !!this.#env.NOTIFY_SOCKET;
  }

  #send(state: string): boolean {
    if (!this.enabled) return false;
    try {
      return sdNotify(state);
    } catch (err) {
      const kind = state.split('=')[0]!;
      if (!this.#failed.has(kind)) this.#log.warn({ err, state: state.split('\n')[0] }, 'sd_notify failed');
      this.#failed.add(kind);
      return false;
    }
  }

  ready(status: string): boolean {
    return this.#send(`READY=1\nSTATUS=${status}`);
  }

  status(status: string): boolean {
    return this.#send(`STATUS=${status}`);
  }

  watchdog(): boolean {
    return this.#send('WATCHDOG=1');
  }

  stopping(status: string): boolean {
    return this.#send(`STOPPING=1\nSTATUS=${status}`);
  }

  /** Half of $WATCHDOG_USEC in ms, or null when systemd set no watchdog for this process. */
  watchdogEveryMs(): number | null {
    try {
      return watchdogIntervalMs(this.#env) ?? null;
    } catch (err) {
      this.#log.warn({ err }, 'WATCHDOG_USEC ignored');
      return null;
    }
  }
}
