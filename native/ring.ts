import { IcosflError, type ErrorCode } from '../common/errors.js';
import { childLogger, type Logger } from '../common/log.js';
import { loadAddon, type NativeRingHandle, type RingHeaderInfo } from './load-addon.js';

export type { RingHeaderInfo };

/**
 * The metric ring (docs/ARCHITECTURE.md, "native/ring.ts"): a fixed-capacity, multi-channel
 * sliding window of timestamped samples kept by C++ in a memory-mapped file. This wrapper checks
 * arguments and applies defaults; the C++ side (native/src/ring.cpp) only re-checks types.
 *
 * - Durability: `push` writes into a MAP_SHARED mapping and returns; the kernel's page cache holds
 *   the sample from then on, so kill -9 loses nothing that push returned for. A power cut can
 *   lose what the kernel had not written back yet (close() msyncs).
 * - Missing values: NaN, ±Inf and numbers beyond float32 range are stored as NaN ("missing").
 *   `stats()` leaves them out of every figure (count is per channel); `windows()` skips any
 *   window that holds one and reports how many in `skipped`. They never reach training.
 * - Space: every block of the file is allocated when it is created, and when an existing file
 *   with holes is opened (posix_fallocate), so a push never meets a full disk (a store into an
 *   unallocated page of a shared mapping on a full filesystem is SIGBUS, which kills the
 *   process). A capacity whose file does not fit is refused: RING_NO_SPACE, naming the path,
 *   the bytes needed and the bytes free (error.details); an existing file is left as it was.
 * - Corrupt file (bad magic, header checksum, size that does not fit the header, a record whose
 *   sequence tag disagrees with the header's write sequence, a non-finite timestamp): moved aside
 *   to `<path>.corrupt` (replacing an earlier one: one backup, not a pile), logged at warn, and a
 *   fresh ring is started. The one slot a killed push was overwriting is not corruption: that
 *   (oldest) sample is dropped.
 * - Layout mismatch (capacity, channels, dtype, schemaTag or format version): RING_LAYOUT_MISMATCH,
 *   the file is left alone. Another handle or process holding the file: RING_LOCKED (flock).
 * - Ownership: every array returned is the caller's (latest/range/stats are copies; the windows'
 *   x and y are filled natively in one pass into buffers that V8 frees), valid after close().
 */
export interface RingOptions {
  /** Ring file; created if absent. */
  path: string;
  /** Samples kept; rounded up to a power of two (1 … 2^26). `capacity` reports the rounded value. */
  capacity: number;
  /** Values per sample (1 … 4096). */
  channels: number;
  /** Stored in the header, e.g. the comma-joined channel names; at most 255 UTF-8 bytes. Default ''. */
  schemaTag?: string;
  /** Corrupt files moved aside are logged here. Default: childLogger('ring'). */
  logger?: Logger;
}

export interface WindowSet {
  /** [n × lookback × channels], oldest window first. */
  x: Float32Array;
  /** [n × horizon × channels]: the samples right after each lookback. */
  y: Float32Array;
  n: number;
  lookback: number;
  horizon: number;
  channels: number;
  /** Candidate windows dropped because they held a missing value. */
  skipped: number;
}

export interface RingStats {
  count: Float64Array;
  mean: Float64Array;
  /** Population standard deviation (divides by count). */
  std: Float64Array;
  min: Float64Array;
  max: Float64Array;
}

export const MAX_CAPACITY = 2 ** 26;
export const MAX_CHANNELS = 4096;
export const MAX_SCHEMA_TAG_BYTES = 255;

function isPositiveInt(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max;
}

/** Native errors carry a RING_* code; anything else (TypeError from the addon, etc.) passes through. */
function fromNative(err: unknown, path: string): unknown {
  const e = err as { code?: unknown; errno?: unknown; neededBytes?: unknown; freeBytes?: unknown } | null;
  const code = e?.code;
  if (typeof code !== 'string' || !code.startsWith('RING_')) return err;
  const details: Record<string, unknown> = { path };
  if (typeof e!.errno === 'string') details.errno = e!.errno;
  if (typeof e!.neededBytes === 'number') details.neededBytes = e!.neededBytes;
  if (typeof e!.freeBytes === 'number') details.freeBytes = e!.freeBytes;
  return new IcosflError(code as ErrorCode, (err as Error).message, { cause: err, details });
}

/** Bytes of a ring file: a 4096-byte header, then per sample an f64 time, a u64 tag and f32 values. */
export function ringFileBytes(capacity: number, channels: number): number {
  return 4096 + capacity * (16 + 4 * channels);
}

/** The capacity MetricRing.open uses for a requested one (the next power of two). */
export function roundedCapacity(capacity: number): number {
  return 2 ** Math.ceil(Math.log2(capacity));
}

/** What a ring file's header says, without locking it. RING_IO if it cannot be read. */
export function inspectRingFile(path: string): RingHeaderInfo {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('inspectRingFile: path must be a non-empty string');
  try {
    return loadAddon().inspectRing(path);
  } catch (err) {
    throw fromNative(err, path);
  }
}

export class MetricRing {
  readonly path: string;
  readonly capacity: number;
  readonly channels: number;
  readonly schemaTag: string;
  private readonly handle: NativeRingHandle;
  private readonly staging: Float32Array;
  private readonly stagingTimestamp: Float64Array;
  private readonly pushStaged: () => void;
  private closed = false;

  private constructor(handle: NativeRingHandle, path: string, capacity: number, channels: number, schemaTag: string) {
    this.handle = handle;
    this.staging = handle.staging;
    this.stagingTimestamp = handle.stagingTimestamp;
    this.pushStaged = handle.pushStaged;
    this.path = path;
    this.capacity = capacity;
    this.channels = channels;
    this.schemaTag = schemaTag;
  }

  /** Opens or creates the ring file. Throws RING_LOCKED, RING_LAYOUT_MISMATCH or RING_IO. */
  static open(opts: RingOptions): MetricRing {
    if (opts === null || typeof opts !== 'object') throw new TypeError('MetricRing.open: options must be an object');
    const { path, capacity, channels, schemaTag = '', logger } = opts;
    if (typeof path !== 'string' || path.length === 0) throw new TypeError('MetricRing.open: path must be a non-empty string');
    if (!isPositiveInt(capacity, MAX_CAPACITY)) throw new RangeError(`MetricRing.open: capacity must be an integer in [1, ${MAX_CAPACITY}], got ${String(capacity)}`);
    if (!isPositiveInt(channels, MAX_CHANNELS)) throw new RangeError(`MetricRing.open: channels must be an integer in [1, ${MAX_CHANNELS}], got ${String(channels)}`);
    if (typeof schemaTag !== 'string') throw new TypeError('MetricRing.open: schemaTag must be a string');
    if (Buffer.byteLength(schemaTag, 'utf8') > MAX_SCHEMA_TAG_BYTES) throw new RangeError(`MetricRing.open: schemaTag must be at most ${MAX_SCHEMA_TAG_BYTES} UTF-8 bytes`);
    // Power-of-two capacity: the slot of sample s is s & (capacity − 1), no division per push.
    const rounded = roundedCapacity(capacity);
    const { NativeRing } = loadAddon();
    let handle: NativeRingHandle;
    try {
      handle = new NativeRing(path, rounded, channels, schemaTag);
    } catch (err) {
      throw fromNative(err, path);
    }
    const info = handle.openInfo();
    const log = logger ?? childLogger('ring');
    if (info.movedAsideTo) log.warn({ path, movedAsideTo: info.movedAsideTo, reason: info.corruptReason }, 'corrupt ring file moved aside; started a fresh ring');
    else if (info.created) log.debug({ path, capacity: rounded, channels, reservedBytes: info.reservedBytes }, 'ring file created');
    else if (info.reservedBytes > 0) log.info({ path, reservedBytes: info.reservedBytes }, 'ring file had unallocated blocks; reserved them');
    return new MetricRing(handle, path, rounded, channels, schemaTag);
  }

  /**
   * Stores one sample; durable once it returns. `values` holds one number per channel (any
   * array-like: Float32Array, Float64Array, number[]); non-finite values are stored as missing.
   * Hot path: the sample is copied into a native staging buffer and pushed by a call with no
   * arguments, so nothing is looked up, converted or allocated per call on the native side.
   */
  push(timestampMs: number, values: ArrayLike<number>): void {
    if (this.closed) throw this.closedError('push');
    if (typeof timestampMs !== 'number' || !Number.isFinite(timestampMs)) throw new TypeError(`MetricRing.push: timestampMs must be a finite number, got ${String(timestampMs)}`);
    if (values === null || typeof values !== 'object' || typeof values.length !== 'number') throw new TypeError('MetricRing.push: values must be an array-like of numbers');
    const channels = this.channels;
    if (values.length !== channels) throw new RangeError(`MetricRing.push: values must hold ${channels} numbers (one per channel), got ${values.length}`);
    const staging = this.staging;
    if (values instanceof Float64Array || values instanceof Float32Array) {
      // Every element is a number already: no per-element check (measured ~10 ns of a push).
      for (let i = 0; i < channels; i++) staging[i] = values[i]!;
    } else {
      for (let i = 0; i < channels; i++) {
        const v = values[i];
        if (typeof v !== 'number') throw new TypeError(`MetricRing.push: values[${i}] must be a number, got ${typeof v}`);
        staging[i] = v;
      }
    }
    this.stagingTimestamp[0] = timestampMs;
    this.pushStaged();
  }

  /** Stores n samples: `timestampsMs` [n], `values` row-major [n × channels]. */
  pushBatch(timestampsMs: Float64Array, values: Float32Array): void {
    if (this.closed) throw this.closedError('pushBatch');
    if (!(timestampsMs instanceof Float64Array)) throw new TypeError('MetricRing.pushBatch: timestampsMs must be a Float64Array');
    if (!(values instanceof Float32Array)) throw new TypeError('MetricRing.pushBatch: values must be a Float32Array');
    if (values.length !== timestampsMs.length * this.channels) {
      throw new RangeError(`MetricRing.pushBatch: values must hold timestampsMs.length × channels = ${timestampsMs.length * this.channels} numbers, got ${values.length}`);
    }
    for (let i = 0; i < timestampsMs.length; i++) {
      if (!Number.isFinite(timestampsMs[i])) throw new RangeError(`MetricRing.pushBatch: timestampsMs[${i}] must be finite, got ${timestampsMs[i]}`);
    }
    this.handle.pushBatch(timestampsMs, values);
  }

  /** Samples held now (≤ capacity). */
  get size(): number {
    if (this.closed) throw this.closedError('size');
    return this.handle.size();
  }

  /** The newest min(n, size) samples, oldest first; values row-major [k × channels]. */
  latest(n: number): { timestamps: Float64Array; values: Float32Array } {
    if (this.closed) throw this.closedError('latest');
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new RangeError(`MetricRing.latest: n must be a non-negative integer, got ${String(n)}`);
    const [timestamps, values] = this.handle.latest(n);
    return { timestamps, values };
  }

  /** Samples with fromMs ≤ timestamp ≤ toMs, oldest first (±Infinity for open ends). */
  range(fromMs: number, toMs: number): { timestamps: Float64Array; values: Float32Array } {
    if (this.closed) throw this.closedError('range');
    if (typeof fromMs !== 'number' || Number.isNaN(fromMs)) throw new TypeError(`MetricRing.range: fromMs must be a number, got ${String(fromMs)}`);
    if (typeof toMs !== 'number' || Number.isNaN(toMs)) throw new TypeError(`MetricRing.range: toMs must be a number, got ${String(toMs)}`);
    if (fromMs > toMs) throw new RangeError(`MetricRing.range: fromMs (${fromMs}) must not be after toMs (${toMs})`);
    const [timestamps, values] = this.handle.range(fromMs, toMs);
    return { timestamps, values };
  }

  /** Per-channel stats over the current window, missing values excluded; NaN where count is 0. */
  stats(): RingStats {
    if (this.closed) throw this.closedError('stats');
    return this.handle.stats();
  }

  /**
   * Supervised windows over the current window, in one native pass: candidate windows start at
   * the oldest sample and every `stride` samples after it; x is a window's first `lookback`
   * samples, y the next `horizon`. Windows holding a missing value are skipped and counted.
   * n is 0 when the ring holds fewer than lookback + horizon samples. Timestamps are not
   * consulted: a gap in sampling (daemon restart) does not split windows.
   */
  windows(lookback: number, horizon: number, stride = 1): WindowSet {
    if (this.closed) throw this.closedError('windows');
    if (!isPositiveInt(lookback, MAX_CAPACITY)) throw new RangeError(`MetricRing.windows: lookback must be a positive integer, got ${String(lookback)}`);
    if (!isPositiveInt(horizon, MAX_CAPACITY)) throw new RangeError(`MetricRing.windows: horizon must be a positive integer, got ${String(horizon)}`);
    if (!isPositiveInt(stride, MAX_CAPACITY)) throw new RangeError(`MetricRing.windows: stride must be a positive integer, got ${String(stride)}`);
    if (lookback + horizon > this.capacity) {
      throw new RangeError(`MetricRing.windows: lookback + horizon (${lookback + horizon}) exceeds the ring's capacity (${this.capacity})`);
    }
    let w: ReturnType<NativeRingHandle['windows']>;
    try {
      w = this.handle.windows(lookback, horizon, stride);
    } catch (err) {
      throw fromNative(err, this.path);
    }
    return { x: w.x, y: w.y, n: w.n, lookback, horizon, channels: this.channels, skipped: w.skipped };
  }

  /** Flushes, unmaps and unlocks. Idempotent; arrays returned earlier stay valid. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private closedError(method: string): TypeError {
    return new TypeError(`MetricRing.${method}: the ring ${this.path} is closed`);
  }
}
