import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { isIcosflError } from '../../common/errors.js';
import { childLogger, createLogger, setRootLogger } from '../../common/log.js';
import { stdoutLogDestination } from '../../common/log-destination.js';
import { storageHealth } from '../../common/storage-health.js';
import { createCollectors } from '../collectors/index.js';
import type { Collector } from '../collectors/types.js';
import type { CollectorReport, FromWorker, ToWorker, WorkerInit } from './messages.js';
import { historyRows, readReplayFile, ReplayCursor } from './replay-source.js';
import { FixedSchedule } from './schedule.js';
import { WorkerWatchdogSide } from './watchdog-gate.js';
import { sdNotify } from '../../native/sd-notify.js';

/**
 * The sampling worker thread. It owns the collectors and the cadence; training and encryption
 * on the main thread (CPU-heavy, synchronous for up to seconds; test/bench/agent-training.bench.ts
 * measures it) cannot delay a wake-up here.
 * Each sample goes to the main thread at once, which pushes it into the ring (sampler.ts says why
 * the main thread owns the ring).
 * It also sends systemd's WATCHDOG=1, gated on both threads' health (watchdog-gate.ts says why).
 * In replay mode (init.replay) there are no collectors: the history rows go out at once, then
 * each tick posts the file's next row, until 'replay-release' when held; nothing after the last.
 */
const init = workerData as WorkerInit;
const port = parentPort!;
// The parent's output (stdout for the daemon, stderr for `sample`), format and colour. A log
// write that fails (full disk under a stdout file) must not end the sampling thread.
setRootLogger(createLogger({ level: init.logLevel, output: init.logOutput, base: { pid: process.pid, thread: 'sampler' }, destination: stdoutLogDestination(storageHealth, init.logOutput.fd).stream }));
const log = childLogger('sampler');

const replay = init.replay ? openReplay() : undefined;
const collectors: Collector[] = init.replay ? [] : createCollectors({ metrics: init.metrics, procRoot: init.procRoot, sysRoot: init.sysRoot, logger: log });
const channel = new Map(init.metrics.map((m, i) => [m, i]));

let schedule = new FixedSchedule(performance.now(), init.intervalMs);
let timer: NodeJS.Timeout | undefined;
let inFlight: Promise<void> | undefined;
let stopping = false;
let seq = 0;
let watchdogTimer: NodeJS.Timeout | undefined;
const watchdog = init.watchdog && new WorkerWatchdogSide(init.watchdog.shared);

async function collectOne(c: Collector, values: Float64Array): Promise<CollectorReport> {
  const started = performance.now();
  try {
    const got = await c.collect();
    for (const [name, v] of Object.entries(got)) {
      const i = channel.get(name);
      if (i !== undefined) values[i] = v;
    }
    return { name: c.name, ok: true, durationMs: performance.now() - started };
  } catch (err) {
    // Not logged here: the collectors log a failing source once; the report carries it on.
    return { name: c.name, ok: false, durationMs: performance.now() - started, error: (err as Error).message };
  }
}

/**
 * Replay mode's start: the whole file read (a failure is posted as 'replay-failed' and the worker
 * ends; the main thread turns it into the sampler's 'fatal'), then its history rows posted with
 * timestamps interval_ms apart ending now. The stream's first row follows one interval later.
 */
function openReplay(): { cursor: ReplayCursor; history: number; held: boolean; finished: boolean; firstDueMs: number } | undefined {
  const r = init.replay!;
  let cursor: ReplayCursor;
  try {
    cursor = new ReplayCursor(readReplayFile(r.file, init.metrics));
  } catch (err) {
    const code = isIcosflError(err) ? err.code : 'DATA_INVALID';
    port.postMessage({ type: 'replay-failed', code, message: (err as Error).message } satisfies FromWorker);
    port.close();
    return undefined;
  }
  const history = cursor.take(historyRows(cursor.rows, r.history));
  const now = Date.now();
  const timestampsMs = Float64Array.from({ length: history.rows }, (_, i) => now - (history.rows - 1 - i) * init.intervalMs);
  const msg: FromWorker = { type: 'replay-history', rows: cursor.rows, timestampsMs, values: history.values };
  port.postMessage(msg, [timestampsMs.buffer, history.values.buffer]);
  log.debug({ file: r.file, rows: cursor.rows, history: history.rows, hold: r.hold }, 'replay file loaded');
  return { cursor, history: history.rows, held: r.hold, finished: false, firstDueMs: performance.now() + (history.rows > 0 ? init.intervalMs : 0) };
}

/** After the last row (or at the stream's start when the history took every row). */
function finishReplay(): void {
  if (!replay || replay.finished) return;
  replay.finished = true;
  port.postMessage({ type: 'replay-done', streamed: replay.cursor.position - replay.history } satisfies FromWorker);
}

async function tick(): Promise<void> {
  const jitterMs = performance.now() - schedule.dueMs;
  const timestampMs = Date.now();
  let values: Float64Array<ArrayBuffer>;
  let reports: CollectorReport[] = [];
  if (replay) {
    const row = replay.cursor.next();
    if (!row) return finishReplay();
    values = row;
  } else {
    values = new Float64Array(init.metrics.length).fill(NaN);
    reports = await Promise.all(collectors.map((c) => collectOne(c, values)));
  }
  const msg: FromWorker = { type: 'sample', seq, timestampMs, jitterMs, values, collectors: reports, skipped: schedule.skipped };
  port.postMessage(msg, [values.buffer]);
  watchdog?.posted(seq);
  seq++;
  if (replay?.cursor.done) finishReplay();
}

/** Starts the replay's stream (at start, or on 'replay-release' when held). */
function startStream(): void {
  if (!replay || stopping) return;
  replay.held = false;
  if (replay.cursor.done) return finishReplay();
  schedule = new FixedSchedule(Math.max(performance.now(), replay.firstDueMs), schedule.intervalMs);
  arm();
}

function arm(): void {
  if (stopping || replay?.finished || replay?.held) return;
  const delay = Math.max(0, Math.ceil(schedule.dueMs - performance.now()));
  timer = setTimeout(() => {
    // libuv's timers run on a whole-millisecond clock and can fire a fraction early: wait the rest,
    // so a sample is never taken before its slot (and jitter is never negative).
    if (performance.now() < schedule.dueMs) return arm();
    inFlight = tick()
      .catch((err: unknown) => log.error({ err }, 'sample failed'))
      .finally(() => {
        inFlight = undefined;
        schedule.advance(performance.now());
        arm();
      });
  }, delay);
}

/**
 * WATCHDOG=1 every pingMs (half of WATCHDOG_USEC) while the gate is open and both threads are
 * healthy. A blocked worker (a collector stuck in a system call) sends nothing, by construction.
 * Refusals are logged once per change of reason, so a stall is visible in the journal before
 * systemd's kill.
 */
function startWatchdog(): void {
  const w = init.watchdog;
  if (!w || !watchdog) return;
  // Logged once per change of kind ('sent', 'sampling stalled', 'main thread stalled'), not per ping.
  const kind = (outcome: string) => outcome.split(':')[0]!;
  let lastOutcome = 'sent';
  watchdogTimer = setInterval(() => {
    const outcome = watchdog.ping(schedule.intervalMs, w.mainStallMs, () => {
      try {
        sdNotify('WATCHDOG=1');
      } catch (err) {
        log.warn({ err, state: 'WATCHDOG=1' }, 'sd_notify failed');
      }
    });
    if (kind(outcome) !== kind(lastOutcome) && outcome !== 'closed' && outcome !== 'no sample yet') {
      if (outcome === 'sent') log.info('watchdog pings resumed');
      else log.warn({ reason: outcome }, 'watchdog ping withheld');
    }
    if (outcome !== 'closed') lastOutcome = outcome;
  }, w.pingMs);
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'interval') {
    schedule.setInterval(msg.intervalMs);
    if (timer && !inFlight) {
      clearTimeout(timer);
      arm();
    }
  } else if (msg.type === 'replay-release') {
    if (replay?.held) startStream();
  } else if (msg.type === 'stop') {
    stopping = true;
    if (timer) clearTimeout(timer);
    if (watchdogTimer) clearInterval(watchdogTimer);
    // A sample being collected is finished and posted first: SIGTERM loses nothing.
    void Promise.resolve(inFlight).then(() => {
      for (const c of collectors) c.close?.();
      port.postMessage({ type: 'stopped' } satisfies FromWorker);
      port.close();
    });
  }
});

// The first sample is taken at once, so READY comes as soon as the ring holds one (in replay
// mode the history is in before that). A held replay arms nothing until 'replay-release'.
if (!init.replay) arm();
else if (replay && !replay.held) startStream();
// The watchdog rules are unchanged in replay mode: a held or finished replay posts no samples, so
// pings stop ('sampling stalled'). Replay is a demo and test mode, not for a unit with WatchdogSec=.
if (!init.replay || replay) startWatchdog();
