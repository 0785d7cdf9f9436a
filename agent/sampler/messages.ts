/** The messages between the sampler's main-thread side (sampler.ts) and its worker (worker.ts). */

export interface WorkerInit {
  metrics: string[];
  intervalMs: number;
  procRoot: string;
  sysRoot: string;
  logLevel: string;
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
