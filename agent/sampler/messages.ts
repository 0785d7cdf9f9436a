import type { LogOutput } from '../../common/log.js';

/** The messages between the sampler's main-thread side (sampler.ts) and its worker (worker.ts). */

export interface WorkerInit {
  metrics: string[];
  intervalMs: number;
  procRoot: string;
  sysRoot: string;
  logLevel: string;
  /** Where the worker logs: as the main thread's root logger does (common/log.ts rootLogOutput). */
  logOutput: LogOutput;
  /**
   * Set when systemd's watchdog is on: the worker sends WATCHDOG=1 every `pingMs` while both
   * threads are healthy (watchdog-gate.ts); `shared` is MainWatchdogSide's buffer.
   */
  watchdog?: { pingMs: number; mainStallMs: number; shared: SharedArrayBuffer };
  /** Set in replay mode (`[sampler] replay_file`): rows of this file instead of the collectors. */
  replay?: ReplayInit;
}

export interface ReplayInit {
  /** Absolute path (load.ts resolves it). */
  file: string;
  /** Fraction of the rows sent at once as history (replay-source.ts historyRows). */
  history: number;
  /** true: the rest is streamed only after 'replay-release'. */
  hold: boolean;
}

export interface CollectorReport {
  name: string;
  ok: boolean;
  durationMs: number;
  /** Message of this round's failure, if any. */
  error?: string;
}

export type ToWorker = { type: 'interval'; intervalMs: number } | { type: 'replay-release' } | { type: 'stop' };

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
  | {
      /** Replay mode, once at start before any 'sample': the file's size and its history rows. */
      type: 'replay-history';
      /** Data rows in the file. */
      rows: number;
      /** [n] wall-clock epoch ms, interval_ms apart, the last one at the time of sending. */
      timestampsMs: Float64Array;
      /** [n × metrics] row-major, config order; NaN where missing. */
      values: Float64Array;
    }
  | {
      /** Replay mode: the last row has been posted (after its 'sample'); nothing follows. */
      type: 'replay-done';
      streamed: number;
    }
  | {
      /** Replay mode: the file could not be read or parsed; the worker ends after this. */
      type: 'replay-failed';
      code: string;
      message: string;
    }
  | { type: 'stopped' };
