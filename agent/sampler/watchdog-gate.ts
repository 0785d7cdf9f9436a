/**
 * The systemd watchdog, pinged from the sampler's worker thread and gated on both threads.
 *
 * Why not the main thread: the main thread also runs the training job, whose tfjs work is
 * synchronous in slices (backend calibration, training batches, an import of tfjs itself). On a
 * slow or emulated CPU one such stretch lasted longer than WatchdogSec and systemd killed a
 * healthy daemon, again and again. A timer on the worker thread is not delayed by that work, and
 * WATCHDOG=1 from a worker comes from the main PID, so NotifyAccess=main accepts it.
 *
 * Why the worker alone would not do: a hung main thread (an endless loop, a deadlock in native
 * code) stops storing samples and answering the control socket, and must still be killed. So the
 * worker pings only while all of these hold (checked on every ping, `gateOpen` below):
 *  1. the daemon has said READY=1 and not STOPPING=1 (the main thread opens and closes the gate);
 *  2. the worker's own sampling is healthy: its last sample was posted at most
 *     2 × interval + 1 s ago (the same rule the main thread's `healthy` in status uses);
 *  3. the main thread makes progress: (a) no sample posted to it has waited unstored for more
 *     than `mainStallMs`, and (b) its event loop turned (a heartbeat timer wrote the shared
 *     clock) within `mainStallMs` (this catches a hang while no sample is pending, e.g. with an
 *     interval longer than the bound).
 *
 * `mainStallMs` = 3/4 of WATCHDOG_USEC. The bound trades tolerance of a legitimately busy main
 * thread against how fast a hang is killed: systemd kills at (last ping) + WATCHDOG_USEC, and the
 * last ping comes at most mainStallMs + one ping period (WATCHDOG_USEC / 2) after the hang, so a
 * hung main thread is killed within about 2¼ × WATCHDOG_USEC (68 s for the unit's 30 s), while
 * a synchronous stretch of up to 3/4 × WATCHDOG_USEC (22 s) is tolerated. Such stretches should
 * not exist any more (the trainer yields between batches); the bound is the safety margin for a
 * slow machine, not a budget to spend. A ring push that keeps failing also leaves samples
 * unstored, so persistent push failures stop the pings after mainStallMs (a restart reopens the ring).
 *
 * Shared memory (one SharedArrayBuffer, all through Atomics; times are process.hrtime in ns,
 * one monotonic clock for every thread, unlike performance.now whose origin is per thread):
 *   int32[0]  gate: 0 open, 1 closed, 2 a worker ping is being sent (so STOPPING=1 waits for it)
 *   int64[1]  main thread's heartbeat (hrtime ns)
 *   int64[2]  sequence number of the last sample the main thread stored in the ring
 */
export const GATE_OPEN = 0;
export const GATE_CLOSED = 1;
export const GATE_SENDING = 2;

const BYTES = 24;

export interface WatchdogShared {
  buffer: SharedArrayBuffer;
}

function views(buffer: SharedArrayBuffer): { gate: Int32Array; times: BigInt64Array } {
  return { gate: new Int32Array(buffer, 0, 1), times: new BigInt64Array(buffer, 0, 3) };
}

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** mainStallMs for a WATCHDOG_USEC given as a ping period (half of it): 3/4 of WATCHDOG_USEC. */
export function mainStallMsForPing(pingMs: number): number {
  return Math.round(pingMs * 1.5);
}

/** The main thread's side: heartbeats, stored sequence numbers, opening and closing the gate. */
export class MainWatchdogSide {
  readonly buffer: SharedArrayBuffer;
  private readonly gate: Int32Array;
  private readonly times: BigInt64Array;

  constructor() {
    this.buffer = new SharedArrayBuffer(BYTES);
    ({ gate: this.gate, times: this.times } = views(this.buffer));
    Atomics.store(this.gate, 0, GATE_CLOSED);
    this.beat();
    Atomics.store(this.times, 2, -1n);
  }

  beat(): void {
    Atomics.store(this.times, 1, nowNs());
  }

  stored(seq: number): void {
    Atomics.store(this.times, 2, BigInt(seq));
    this.beat();
  }

  /** After READY=1: the worker may ping (while healthy). */
  open(): void {
    Atomics.compareExchange(this.gate, 0, GATE_CLOSED, GATE_OPEN);
  }

  /**
   * Before STOPPING=1: no ping is sent after this returns. A ping being sent right now is waited
   * for (microseconds; at most `maxWaitMs`, should the worker die mid-send).
   */
  close(maxWaitMs = 100): void {
    const until = Date.now() + maxWaitMs;
    while (Atomics.compareExchange(this.gate, 0, GATE_OPEN, GATE_CLOSED) === GATE_SENDING && Date.now() < until) {
      Atomics.wait(this.gate, 0, GATE_SENDING, 10);
    }
    Atomics.store(this.gate, 0, GATE_CLOSED);
  }
}

export interface GateState {
  /** ns */
  now: bigint;
  /** ns of the worker's last posted sample, or null before the first. */
  lastPostedAt: bigint | null;
  intervalMs: number;
  /** ns of the main thread's heartbeat. */
  mainBeat: bigint;
  /** ns at which the oldest sample not yet stored by the main thread was posted, or null when none waits. */
  oldestUnstoredAt: bigint | null;
  mainStallMs: number;
}

/** Conditions 2 and 3 of the module comment; null when healthy, else why not (for the log). */
export function gateProblem(s: GateState): string | null {
  const ms = (ns: bigint) => Number(ns) / 1e6;
  if (s.lastPostedAt === null) return 'no sample yet';
  const sampleAge = ms(s.now - s.lastPostedAt);
  if (sampleAge > 2 * s.intervalMs + 1000) return `sampling stalled: last sample ${Math.round(sampleAge)} ms ago`;
  if (s.oldestUnstoredAt !== null && ms(s.now - s.oldestUnstoredAt) > s.mainStallMs) {
    return `main thread stalled: a sample has waited ${Math.round(ms(s.now - s.oldestUnstoredAt))} ms to be stored`;
  }
  const beatAge = ms(s.now - s.mainBeat);
  if (beatAge > s.mainStallMs) return `main thread stalled: no heartbeat for ${Math.round(beatAge)} ms`;
  return null;
}

/** The worker's side: remembers when each sample was posted, and sends the pings. */
export class WorkerWatchdogSide {
  private readonly gate: Int32Array;
  private readonly times: BigInt64Array;
  /** Post times of samples seq = firstSeq, firstSeq + 1, … not yet known to be stored. */
  private pending: bigint[] = [];
  private firstSeq = 0;
  private lastPostedAt: bigint | null = null;
  /** Enough to hold every sample of a stall far longer than any watchdog would wait. */
  private static readonly MAX_PENDING = 100_000;

  constructor(buffer: SharedArrayBuffer) {
    ({ gate: this.gate, times: this.times } = views(buffer));
  }

  posted(seq: number, at: bigint = nowNs()): void {
    this.lastPostedAt = at;
    if (this.pending.length === 0) this.firstSeq = seq;
    // Only the oldest waiting sample matters, so a full list keeps its head.
    if (this.pending.length < WorkerWatchdogSide.MAX_PENDING) this.pending.push(at);
  }

  state(intervalMs: number, mainStallMs: number, now: bigint = nowNs()): GateState {
    const stored = Number(Atomics.load(this.times, 2));
    const drop = Math.min(this.pending.length, stored - this.firstSeq + 1);
    if (drop > 0) {
      this.pending.splice(0, drop);
      this.firstSeq += drop;
    }
    return { now, lastPostedAt: this.lastPostedAt, intervalMs, mainBeat: Atomics.load(this.times, 1), oldestUnstoredAt: this.pending[0] ?? null, mainStallMs };
  }

  /**
   * Sends WATCHDOG=1 through `send` if the gate is open and nothing is wrong; returns what
   * happened: 'sent', 'closed' (before READY or after STOPPING), or the problem.
   */
  ping(intervalMs: number, mainStallMs: number, send: () => void): string {
    const problem = gateProblem(this.state(intervalMs, mainStallMs));
    if (problem) return problem;
    if (Atomics.compareExchange(this.gate, 0, GATE_OPEN, GATE_SENDING) !== GATE_OPEN) return 'closed';
    try {
      send();
    } finally {
      // Not a plain store: a close() that gave up waiting must not be undone.
      Atomics.compareExchange(this.gate, 0, GATE_SENDING, GATE_OPEN);
      Atomics.notify(this.gate, 0);
    }
    return 'sent';
  }
}
