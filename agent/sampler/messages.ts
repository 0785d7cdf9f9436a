/** The messages between the sampler's main-thread side (sampler.ts) and its worker (worker.ts). */

export interface WorkerInit {
  metrics: string[];
  intervalMs: number;
  procRoot: string;
  sysRoot: string;
  logLevel: string;
  /**
   * Set when systemd's watchdog is on: the worker sends WATCHDOG=1 every `pingMs` while both
   * threads are healthy (watchdog-gate.ts); `shared` is MainWatchdogSide's buffer.
   */
  watchdog?: { pingMs: number; mainStallMs: number; shared: SharedArrayBuffer };
}

export interface CollectorReport {
  name: string;
  ok: boolean;
  durationMs: number;
  /** Message of this round's failure, if any. */
  error?: string;
}

export type ToWorker = { type: 'interval'; intervalMs: number } | { type: 'stop' };

export type FromWorker =
  | {
      type: 'sample';
      /** 0, 1, 2…: the main thread reports the last one it stored through the watchdog's shared memory. */
      seq: number;
      /** Wall-clock epoch ms at which the collection started: what the ring stores. */
      timestampMs: number;
      /** Actual wake-up − scheduled wake-up on the monotonic clock. */
      jitterMs: number;
      /** One value per configured metric, in config order; NaN where unknown. */
      values: Float64Array;
      collectors: CollectorReport[];
      skipped: number;
    }
  | { type: 'stopped' };
