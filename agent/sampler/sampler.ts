import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { ERROR_CODES, IcosflError, type ErrorCode } from '../../common/errors.js';
import { rootLogOutput, type Logger } from '../../common/log.js';
import type { MetricRing } from '../../native/ring.js';
import { JitterWindow, type JitterSummary } from './jitter.js';
import type { CollectorReport, FromWorker, ReplayInit, ToWorker, WorkerInit } from './messages.js';
import { MainWatchdogSide, mainStallMsForPing } from './watchdog-gate.js';

/**
 * The main-thread side of sampling: starts the worker (worker.ts, which owns the collectors and
 * the cadence) and pushes each sample into the ring the moment it arrives.
 *
 * Why the main thread owns the ring rather than the worker: the training job reads windows from
 * the same MetricRing object (zero-copy typed arrays over the mapping), and a native object
 * cannot cross threads, and the ring's flock admits one handle per file. The cost: a long
 * synchronous stretch on the main thread (an encryption ~0.1 s; a training round, whose store
 * lag agent-training.bench measured at p99 0.5 s, once 9 s) delays the push, never the
 * measurement: timestamps come from the worker's cadence. Samples waiting in the port during such
 * a stretch are lost if the process is killed then; `storeLagMs` (in status) measures the delay.
 */
export interface SamplerOptions {
  ring: MetricRing;
  metrics: string[];
  intervalMs: number;
  procRoot: string;
  sysRoot: string;
  logLevel: string;
  logger: Logger;
  /**
   * Half of $WATCHDOG_USEC (notifier.ts watchdogPingMs) when systemd's watchdog is on: the worker
   * then sends WATCHDOG=1 at this period, gated on both threads (watchdog-gate.ts), once
   * openWatchdog() is called (after READY=1) and until closeWatchdog() (before STOPPING=1).
   */
  watchdogPingMs?: number | null;
  /**
   * Replay mode (`[sampler] replay_file`): the worker reads this CSV instead of running
   * collectors. The first `history` fraction of its rows is stored at once, the rest streamed one
   * per interval (after releaseReplay() when `hold`). Null or absent: sample this machine.
   */
  replay?: ReplayInit | null;
}

export interface CollectorState {
  name: string;
  ok: boolean;
  lastDurationMs: number;
  failures: number;
  successes: number;
  lastError: string | null;
}

export interface SamplerStats {
  samplesStored: number;
  pushErrors: number;
  skippedSlots: number;
  intervalMs: number;
  lastSampleMs: number | null;
  /** Monotonic ms (performance.now) of the last push; the watchdog's health test uses it. */
  lastStoredMonotonicMs: number | null;
  jitterMs: JitterSummary;
  storeLagMs: JitterSummary;
  collectors: CollectorState[];
  replay: ReplayStats | null;
}

export interface ReplayStats {
  file: string;
  /** Data rows in the file; null until the worker has read it. */
  rows: number | null;
  /** Rows stored at start as history. */
  history: number;
  /** Rows stored since, one per interval. */
  streamed: number;
  /** Streaming waits for releaseReplay(). */
  held: boolean;
  /** The last row is stored; no more samples come. */
  done: boolean;
}

export class Sampler extends EventEmitter {
  private readonly worker: Worker;
  private readonly opts: SamplerOptions;
  private readonly jitter = new JitterWindow();
  private readonly storeLag = new JitterWindow();
  private readonly collectorState = new Map<string, CollectorState>();
  private samplesStored = 0;
  private readonly ringSizeAtStart: number;
  private pushErrors = 0;
  private skippedSlots = 0;
  private intervalMs: number;
  private lastSampleMs: number | null = null;
  private lastStoredMonotonicMs: number | null = null;
  private stopped: Promise<boolean> | undefined;
  private readonly firstStored: Promise<void>;
  private exited = false;
  private readonly watchdog: MainWatchdogSide | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly replay: ReplayStats | null;
  private failed = false;

  constructor(opts: SamplerOptions) {
    super();
    if (opts.metrics.length !== opts.ring.channels) {
      throw new RangeError(`Sampler: ${opts.metrics.length} metrics but the ring has ${opts.ring.channels} channels`);
    }
    this.opts = opts;
    this.ringSizeAtStart = opts.ring.size;
    this.intervalMs = opts.intervalMs;
    const init: WorkerInit = { metrics: opts.metrics, intervalMs: opts.intervalMs, procRoot: opts.procRoot, sysRoot: opts.sysRoot, logLevel: opts.logLevel, logOutput: rootLogOutput() };
    this.replay = opts.replay ? { file: opts.replay.file, rows: null, history: 0, streamed: 0, held: opts.replay.hold, done: false } : null;
    if (opts.replay) init.replay = { ...opts.replay };
    if (opts.watchdogPingMs != null && opts.watchdogPingMs > 0) {
      this.watchdog = new MainWatchdogSide();
      const mainStallMs = mainStallMsForPing(opts.watchdogPingMs);
      init.watchdog = { pingMs: opts.watchdogPingMs, mainStallMs, shared: this.watchdog.buffer };
      // The event loop's heartbeat, well inside the bound: a tenth of it (at most 1 s).
      const w = this.watchdog;
      this.heartbeat = setInterval(() => w.beat(), Math.max(10, Math.min(1000, Math.floor(mainStallMs / 10))));
      this.heartbeat.unref();
    }
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
    this.firstStored = new Promise((resolve, reject) => {
      this.once('stored', () => resolve());
      this.once('fatal', reject);
    });
    this.firstStored.catch(() => undefined);
    this.worker.on('message', (msg: FromWorker) => {
      if (msg.type === 'sample') {
        if (this.store(msg.timestampMs, msg.values, msg) && this.replay) this.replay.streamed++;
      } else if (msg.type === 'replay-history') this.storeHistory(msg.rows, msg.timestampsMs, msg.values);
      else if (msg.type === 'replay-done') {
        if (this.replay) this.replay.done = true;
        opts.logger.info({ file: this.replay?.file, rows: this.replay?.rows, history: this.replay?.history, streamed: msg.streamed }, 'replay finished');
        this.emit('replay-done');
      } else if (msg.type === 'replay-failed') {
        // A world failure (a bad or vanished file), so its own code and exit status, not SOFTWARE.
        this.failed = true;
        const code: ErrorCode = msg.code in ERROR_CODES ? (msg.code as ErrorCode) : 'DATA_INVALID';
        const err = new IcosflError(code, msg.message);
        opts.logger.error({ err }, 'replay file could not be read');
        this.emit('fatal', err);
      }
    });
    this.worker.on('error', (err) => {
      opts.logger.error({ err }, 'sampler worker crashed');
      this.emit('fatal', err);
    });
    this.worker.on('exit', (code) => {
      this.exited = true;
      if (!this.stopped && !this.failed) {
        const err = new Error(`sampler worker exited with code ${code}`);
        opts.logger.error({ code }, 'sampler worker exited');
        this.emit('fatal', err);
      }
    });
  }

  /**
   * One row into the ring. `sample` is set for what the worker's cadence produced (the watchdog,
   * jitter and collector figures follow it); replay history rows have none. True if stored.
   */
  private store(timestampMs: number, values: Float64Array, sample?: { seq: number; jitterMs: number; collectors: CollectorReport[]; skipped: number }): boolean {
    try {
      this.opts.ring.push(timestampMs, values);
    } catch (err) {
      this.pushErrors++;
      this.opts.logger.error({ err }, 'ring push failed');
      return false;
    }
    this.samplesStored++;
    this.lastSampleMs = timestampMs;
    this.lastStoredMonotonicMs = performance.now();
    if (sample) this.recordSample(timestampMs, sample.seq, sample.jitterMs, sample.collectors, sample.skipped);
    this.emit('stored', timestampMs);
    return true;
  }

  /** Replay history: stored row by row like samples, before the first streamed one. */
  private storeHistory(rows: number, timestampsMs: Float64Array, values: Float64Array): void {
    if (!this.replay) return;
    this.replay.rows = rows;
    // A restarted replay finds its history in the ring already: storing it again would append a
    // second copy after the samples streamed before the restart.
    if (this.ringSizeAtStart >= timestampsMs.length && timestampsMs.length > 0) {
      this.opts.logger.info({ file: this.replay.file, inRing: this.ringSizeAtStart, history: timestampsMs.length }, 'replay history already in the ring; not stored again');
      this.emit('stored', this.lastSampleMs ?? Date.now());
      return;
    }
    const c = this.opts.metrics.length;
    for (let i = 0; i < timestampsMs.length; i++) {
      if (this.store(timestampsMs[i]!, values.subarray(i * c, (i + 1) * c))) this.replay.history++;
    }
  }

  private recordSample(timestampMs: number, seq: number, jitterMs: number, reports: CollectorReport[], skipped: number): void {
    this.watchdog?.stored(seq);
    this.jitter.record(jitterMs);
    this.storeLag.record(Date.now() - timestampMs);
    this.skippedSlots = skipped;
    for (const r of reports) {
      let s = this.collectorState.get(r.name);
      if (!s) this.collectorState.set(r.name, (s = { name: r.name, ok: r.ok, lastDurationMs: 0, failures: 0, successes: 0, lastError: null }));
      s.ok = r.ok;
      s.lastDurationMs = r.durationMs;
      if (r.ok) s.successes++;
      else {
        s.failures++;
        s.lastError = r.error ?? 'unknown error';
      }
    }
  }

  /** Lets the worker send WATCHDOG=1 (while healthy); the daemon calls it after READY=1. No-op without a watchdog. */
  openWatchdog(): void {
    this.watchdog?.open();
  }

  /** No WATCHDOG=1 is sent once this returns (the daemon calls it before STOPPING=1). */
  closeWatchdog(): void {
    this.watchdog?.close();
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  /** Resolves once the first sample is in the ring; rejects if the worker dies first. */
  firstSample(): Promise<void> {
    return this.firstStored;
  }

  /**
   * Starts streaming a held replay (replay_hold): the federation job calls it once its first
   * federated model is installed, so the streamed rows are forecast by that model. Idempotent;
   * a no-op without replay or when not held.
   */
  releaseReplay(): void {
    if (!this.replay?.held || this.stopped) return;
    this.replay.held = false;
    this.worker.postMessage({ type: 'replay-release' } satisfies ToWorker);
  }

  setIntervalMs(intervalMs: number): void {
    this.intervalMs = intervalMs;
    this.worker.postMessage({ type: 'interval', intervalMs } satisfies ToWorker);
  }

  /** Cheap reads for hot callers (watchdog, scrapes); stats() also sorts the jitter windows. */
  get storedCount(): number {
    return this.samplesStored;
  }

  get lastStoredAt(): number | null {
    return this.lastStoredMonotonicMs;
  }

  get lastSampleTime(): number | null {
    return this.lastSampleMs;
  }

  get skipped(): number {
    return this.skippedSlots;
  }

  collectors(): CollectorState[] {
    return [...this.collectorState.values()].map((s) => ({ ...s }));
  }

  jitterSummary(): JitterSummary {
    return this.jitter.summary();
  }

  stats(): SamplerStats {
    return {
      samplesStored: this.samplesStored,
      pushErrors: this.pushErrors,
      skippedSlots: this.skippedSlots,
      intervalMs: this.intervalMs,
      lastSampleMs: this.lastSampleMs,
      lastStoredMonotonicMs: this.lastStoredMonotonicMs,
      jitterMs: this.jitter.summary(),
      storeLagMs: this.storeLag.summary(),
      collectors: this.collectors(),
      replay: this.replay && { ...this.replay },
    };
  }

  /**
   * Stops the cadence, waits for a sample in progress to be stored, and ends the worker.
   * Resolves true once the worker has ended. A worker that does not answer within `timeoutMs`
   * is terminated; one blocked inside a system call (a collector reading a hung file system)
   * cannot be, and half a second later this resolves false: the caller must then end the
   * process by a signal, because process.exit() waits for that thread forever.
   */
  stop(timeoutMs = 1500): Promise<boolean> {
    this.closeWatchdog();
    this.stopped ??= new Promise<boolean>((resolve) => {
      if (this.exited) return resolve(true);
      let giveUp: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        this.opts.logger.warn({ timeoutMs }, 'sampler worker did not stop in time; terminating it');
        void this.worker.terminate();
        giveUp = setTimeout(() => resolve(false), 500);
      }, timeoutMs);
      // 'stopped' follows every sample on the same port, so all of them are stored by then.
      const done = () => {
        clearTimeout(timer);
        clearTimeout(giveUp);
        resolve(true);
      };
      this.worker.on('message', (msg: FromWorker) => msg.type === 'stopped' && done());
      this.worker.once('exit', done);
      this.worker.postMessage({ type: 'stop' } satisfies ToWorker);
    });
    return this.stopped;
  }
}
