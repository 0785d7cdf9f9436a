/**
 * `npm run bench -- ring`: the native ring's push cost per sample (from JS, through the
 * validating wrapper) and windows() against the same construction in plain TypeScript, measured
 * in this process. Progress on stderr; one JSON line on stdout:
 *   {"bench":"ring","push_ns":…,"windows_speedup_vs_js":…, …details}
 * Goals (issue 2): push_ns ≤ 50, windows_speedup_vs_js ≥ 5. Figures are medians of several reps.
 * windows_speedup_vs_js compares with agent/trainer/windows.ts (the TypeScript builder the trainer
 * uses for CSV traces); `_loop` and `_set` compare with TypeScript versions of the native algorithm.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildWindows } from '../../agent/trainer/windows.js';
import { loadAddon } from '../../native/load-addon.js';
import { MetricRing } from '../../native/ring.js';
import { tempDir } from '../helpers/paths.js';

const CAPACITY = 65_536;
const CHANNELS = 8; // a typical agent: cpu, mem, load1, net rx/tx, disk r/w, fs
const LOOKBACK = 30;
const HORIZON = 1;
const PUSHES = 1_000_000;
const REPS = 7;

const log = (msg: string, data: Record<string, unknown> = {}) => process.stderr.write(`${msg} ${JSON.stringify(data)}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

/**
 * The same sliding window in plain TypeScript: circular Float32Array storage, and windows()
 * built the way the native code does (one pass marking rows with a missing value, then copies).
 * Two copy styles: element by element, and TypedArray.set over subarrays (memcpy inside V8).
 */
class JsRing {
  private readonly values: Float32Array;
  private written = 0;
  constructor(
    private readonly capacity: number,
    private readonly channels: number,
  ) {
    this.values = new Float32Array(capacity * channels);
  }

  pushBatch(values: Float32Array): void {
    const rows = values.length / this.channels;
    for (let i = 0; i < rows; i++) {
      const slot = (this.written++ & (this.capacity - 1)) * this.channels;
      for (let c = 0; c < this.channels; c++) this.values[slot + c] = values[i * this.channels + c]!;
    }
  }

  /** Rows with a missing value, as prefix counts, and the windows that avoid them. */
  private plan(lookback: number, horizon: number, stride: number): { first: number; starts: number[]; skipped: number } {
    const size = Math.min(this.written, this.capacity);
    const first = this.written - size;
    const mask = this.capacity - 1;
    const ch = this.channels;
    const values = this.values;
    const bad = new Uint32Array(size + 1);
    for (let i = 0; i < size; i++) {
      const row = ((first + i) & mask) * ch;
      let ok = true;
      for (let c = 0; c < ch; c++) if (!Number.isFinite(values[row + c]!)) ok = false;
      bad[i + 1] = bad[i]! + (ok ? 0 : 1);
    }
    const span = lookback + horizon;
    const candidates = size >= span ? Math.floor((size - span) / stride) + 1 : 0;
    const starts: number[] = [];
    for (let k = 0; k < candidates; k++) if (bad[k * stride + span] === bad[k * stride]) starts.push(k * stride);
    return { first, starts, skipped: candidates - starts.length };
  }

  /** The window oldest → newest as one contiguous array (a copy). */
  linear(): Float32Array {
    const size = Math.min(this.written, this.capacity);
    const slot = (this.written - size) & (this.capacity - 1);
    const out = new Float32Array(size * this.channels);
    out.set(this.values.subarray(slot * this.channels));
    out.set(this.values.subarray(0, slot * this.channels), (this.capacity - slot) * this.channels);
    return out;
  }

  /** Copies element by element. */
  windowsLoop(lookback: number, horizon: number, stride: number): { x: Float32Array; y: Float32Array; n: number; skipped: number } {
    const { first, starts, skipped } = this.plan(lookback, horizon, stride);
    const ch = this.channels;
    const mask = this.capacity - 1;
    const values = this.values;
    const x = new Float32Array(starts.length * lookback * ch);
    const y = new Float32Array(starts.length * horizon * ch);
    let xi = 0;
    let yi = 0;
    for (const s of starts) {
      for (let r = 0; r < lookback + horizon; r++) {
        const row = ((first + s + r) & mask) * ch;
        if (r < lookback) for (let c = 0; c < ch; c++) x[xi++] = values[row + c]!;
        else for (let c = 0; c < ch; c++) y[yi++] = values[row + c]!;
      }
    }
    return { x, y, n: starts.length, skipped };
  }

  /** Copies runs of rows with TypedArray.set over subarrays (a memcpy inside V8). */
  windowsSet(lookback: number, horizon: number, stride: number): { x: Float32Array; y: Float32Array; n: number; skipped: number } {
    const { first, starts, skipped } = this.plan(lookback, horizon, stride);
    const ch = this.channels;
    const cap = this.capacity;
    const values = this.values;
    const x = new Float32Array(starts.length * lookback * ch);
    const y = new Float32Array(starts.length * horizon * ch);
    const copy = (from: number, rows: number, dst: Float32Array, at: number) => {
      const slot = (first + from) & (cap - 1);
      const head = Math.min(rows, cap - slot);
      dst.set(values.subarray(slot * ch, (slot + head) * ch), at);
      if (rows > head) dst.set(values.subarray(0, (rows - head) * ch), at + head * ch);
    };
    starts.forEach((s, i) => {
      copy(s, lookback, x, i * lookback * ch);
      copy(s + lookback, horizon, y, i * horizon * ch);
    });
    return { x, y, n: starts.length, skipped };
  }
}

function timeMs(fn: () => unknown): number {
  gc();
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const { dir, cleanup } = tempDir('icosfl-ring-bench-');
try {
  const ring = MetricRing.open({ path: join(dir, 'bench.ring'), capacity: CAPACITY, channels: CHANNELS });

  // push: one sample at a time with a reused Float32Array, as the sampler does.
  const row = new Float32Array(CHANNELS).map((_, c) => c * 10);
  const pushLoop = (n: number, base: number) => {
    for (let i = 0; i < n; i++) {
      row[0] = i;
      ring.push(base + i, row);
    }
  };
  pushLoop(300_000, 0);
  // Wall time, and CPU time as well: on a shared machine the process is descheduled part of
  // the time, which wall time counts and CPU time does not.
  const pushNs: number[] = [];
  const pushCpuNs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    pushLoop(PUSHES, r * PUSHES);
    pushNs.push(Number(process.hrtime.bigint() - t0) / PUSHES);
    const cpu = process.cpuUsage(c0);
    pushCpuNs.push(((cpu.user + cpu.system) * 1000) / PUSHES);
    log('push rep', { rep: r, ns: +pushNs[r]!.toFixed(1), cpuNs: +pushCpuNs[r]!.toFixed(1) });
  }
  // The floor: one Node-API call that does nothing (what pushStaged costs minus the push),
  // right after the pushes so both see the same machine load.
  const { callFloor } = loadAddon();
  const floorNs: number[] = [];
  const floorCpuNs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PUSHES; i++) callFloor();
    floorNs.push(Number(process.hrtime.bigint() - t0) / PUSHES);
    const cpu = process.cpuUsage(c0);
    floorCpuNs.push(((cpu.user + cpu.system) * 1000) / PUSHES);
  }
  const arrayRow = Array.from(row);
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < PUSHES; i++) ring.push(i, arrayRow);
  const pushArrayNs = Number(process.hrtime.bigint() - t1) / PUSHES;

  // pushBatch: 4096 samples per call.
  const batchRows = 4096;
  const batchTs = new Float64Array(batchRows).map((_, i) => i);
  const batchValues = new Float32Array(batchRows * CHANNELS).map((_, i) => i % 97);
  const t2 = process.hrtime.bigint();
  for (let i = 0; i < 100; i++) ring.pushBatch(batchTs, batchValues);
  const pushBatchNs = Number(process.hrtime.bigint() - t2) / (100 * batchRows);

  // windows: a full ring with one missing value per ~1000 samples, identical in both rings.
  const data = new Float32Array(CAPACITY * CHANNELS);
  for (let i = 0; i < data.length; i++) data[i] = i % 7919 === 0 ? NaN : Math.sin(i / 50) * 50 + 50;
  ring.pushBatch(new Float64Array(CAPACITY).map((_, i) => 1e12 + i), data);
  const js = new JsRing(CAPACITY, CHANNELS);
  js.pushBatch(data);

  const native = ring.windows(LOOKBACK, HORIZON);
  // The project's own TypeScript window builder (agent/trainer/windows.ts, used for CSV traces),
  // fed from the same ring made contiguous: the plain-TypeScript way this codebase builds windows.
  const trainerWindows = () => buildWindows(js.linear(), CHANNELS, LOOKBACK, HORIZON, 1);
  for (const [name, ref] of [['trainer', trainerWindows()], ['loop', js.windowsLoop(LOOKBACK, HORIZON, 1)], ['set', js.windowsSet(LOOKBACK, HORIZON, 1)]] as const) {
    if (ref.n !== native.n || ref.skipped !== native.skipped || !ref.x.every((v, i) => v === native.x[i]) || !ref.y.every((v, i) => v === native.y[i])) {
      throw new Error(`JS windows (${name}) differ from native: n ${ref.n} vs ${native.n}`);
    }
  }
  log('windows', { n: native.n, skipped: native.skipped, xMiB: +((native.x.byteLength / 2 ** 20).toFixed(1)) });

  const nativeMs: number[] = [];
  const jsTrainerMs: number[] = [];
  const jsLoopMs: number[] = [];
  const jsSetMs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    nativeMs.push(timeMs(() => ring.windows(LOOKBACK, HORIZON)));
    jsTrainerMs.push(timeMs(trainerWindows));
    jsLoopMs.push(timeMs(() => js.windowsLoop(LOOKBACK, HORIZON, 1)));
    jsSetMs.push(timeMs(() => js.windowsSet(LOOKBACK, HORIZON, 1)));
    log('windows rep', { rep: r, nativeMs: +nativeMs[r]!.toFixed(2), jsTrainerMs: +jsTrainerMs[r]!.toFixed(2), jsLoopMs: +jsLoopMs[r]!.toFixed(2), jsSetMs: +jsSetMs[r]!.toFixed(2) });
  }
  ring.close();

  const nMs = median(nativeMs);
  const trainerMs = median(jsTrainerMs);
  const loopMs = median(jsLoopMs);
  const setMs = median(jsSetMs);
  const result = {
    bench: 'ring',
    push_ns: +median(pushNs).toFixed(1),
    push_ns_min: +Math.min(...pushNs).toFixed(1),
    push_cpu_ns: +median(pushCpuNs).toFixed(1),
    napi_call_floor_ns: +median(floorNs).toFixed(1),
    napi_call_floor_cpu_ns: +median(floorCpuNs).toFixed(1),
    // Headline: against the codebase's TypeScript builder. The other two share the native
    // algorithm (prefix counts of missing rows); `_set` copies with TypedArray.set, i.e. memcpy,
    // and shows the floor both sides share: first-touch page faults on the fresh output arrays.
    windows_speedup_vs_js: +(trainerMs / nMs).toFixed(2),
    windows_speedup_vs_js_loop: +(loopMs / nMs).toFixed(2),
    windows_speedup_vs_js_set: +(setMs / nMs).toFixed(2),
    windows_native_ms: +nMs.toFixed(2),
    push_array_ns: +pushArrayNs.toFixed(1),
    push_batch_ns: +pushBatchNs.toFixed(1),
    capacity: CAPACITY,
    channels: CHANNELS,
    lookback: LOOKBACK,
    horizon: HORIZON,
    windows: native.n,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  cleanup();
}
