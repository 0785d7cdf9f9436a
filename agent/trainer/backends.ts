import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IcosflError } from '../../common/errors.js';
import { childLogger, type Logger } from '../../common/log.js';
import { loadAddon } from '../../native/load-addon.js';
import { BACKEND_NAMES, type BackendName, type TrainerConfig } from './config.js';
import { Forecaster } from './forecaster.js';
import { setFusedEngine, type FusedEngine } from './fused-step.js';
import type { ModelSpec } from './model.js';
import { seededRandom } from './rng.js';
import type { ProbeAnswer } from './gpu/adapter-probe.js';
import { tf } from './tf.js';

/**
 * TensorFlow.js backends: which load on this node, how fast each trains the configured model,
 * and which one training uses. Preference order (BACKEND_NAMES) only breaks ties; by default the
 * fastest *calibrated* backend wins, because a GPU can be slower than WASM for a small model
 * (../shared/DESIGN.md: tfjs's LSTM on an H100 was 13× slower than WASM at batch 64).
 * Nothing here is a hard dependency: optional packages are imported dynamically and a failure
 * becomes a reason string.
 */
export interface Candidate {
  name: BackendName;
  /** Imports and initialises the backend; returns a device description or throws why not. */
  load(): Promise<string>;
  /** Makes a loaded backend the one training and inference run on. */
  activate(): Promise<void>;
}

export interface BackendStatus {
  name: BackendName;
  loaded: boolean;
  reason?: string;
  device?: string;
  samplesPerS?: number;
}

const require = createRequire(import.meta.url);

/** A specifier in a variable keeps tsc from resolving optional packages that are not installed. */
async function importOptional(specifier: string): Promise<unknown> {
  try {
    return await import(specifier);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(specifier)) {
      throw new Error(`${specifier} is not installed (optional; npm install ${specifier} where its native download is possible)`);
    }
    throw err;
  }
}

/** Makes tfjs backend `tfName` active for training and inference (clearing any fused engine). */
async function activate(tfName: string): Promise<void> {
  setFusedEngine(undefined);
  if (!(await tf.setBackend(tfName))) throw new Error(`tf.setBackend('${tfName}') failed to initialise`);
  await tf.ready();
}

function tfjsNode(name: 'tfjs-node-gpu' | 'tfjs-node'): Candidate {
  return {
    name,
    async load() {
      await importOptional(`@tensorflow/${name}`);
      await activate('tensorflow');
      return name === 'tfjs-node-gpu' ? 'libtensorflow (CUDA)' : 'libtensorflow (CPU)';
    },
    activate: () => activate('tensorflow'),
  };
}

/**
 * WebGPU through Dawn (the `webgpu` package), training with our fused WGSL step (gpu/) instead of
 * tfjs's WebGPU backend. Why: tfjs runs one kernel per op, and per-dispatch cost made it slower
 * than WASM at our batch sizes (../shared/DESIGN.md); and its synchronous reads need
 * OffscreenCanvas, which Node lacks. Forward passes (validation, forecasts) run in C++ on the CPU
 * (forwardPasses). LSTMs have no fused step and train and predict on the best CPU-side tfjs
 * backend, WASM when it loads.
 *
 * Software adapters (Mesa's llvmpipe) are refused unless `allowSoftwareAdapter`: they are a CPU
 * pretending to be a GPU, useful to test the kernels, never a reason to leave WASM.
 */
function webgpu(opts: { flags: string[]; allowSoftwareAdapter: boolean; wasmDir: string; logger: Logger | undefined }): Candidate {
  let engine: FusedEngine | undefined;
  return {
    name: 'webgpu',
    async load() {
      // Asked in a child process first (probeDawnAdapter says why); Dawn is loaded here only for an adapter that will be used.
      const probed = await probeDawnAdapter(opts.flags, opts.logger ?? childLogger('backends'));
      if (probed.software && !opts.allowSoftwareAdapter) {
        throw new Error(`only a software WebGPU adapter (${probed.name}); it is a CPU, so it is not used unless ICOSFL_WEBGPU_SOFTWARE=1`);
      }
      const { adapter, name } = await dawnAdapter(opts.flags);
      engine = { kind: 'webgpu', device: await dawnDevice(adapter) };
      return `${name}; ${await forwardPasses(opts.wasmDir)}`;
    },
    async activate() {
      if (!engine) throw new Error('webgpu is not loaded');
      await activateWithEngine(engine);
    },
  };
}

/**
 * Our own fused training step in C++ (native/dense-trainer.ts, in the addon that also holds the
 * ring), on a libuv worker thread. Why: on one core tfjs's WASM backend trained the default
 * model 3.4× slower than PyTorch (its ~80 kernels per step each cross from JS into WASM and
 * allocate tensors); one C++ pass over a batch's rows does the same maths with every weight in
 * L1 cache, and training leaves the event loop free. LSTMs, which have no fused step, train and
 * predict on tfjs (WASM when it loads).
 */
function native(opts: { wasmDir: string }): Candidate {
  const engine: FusedEngine = { kind: 'native' };
  return {
    name: 'native',
    async load() {
      if (typeof loadAddon().NativeDenseTrainer !== 'function') throw new Error('the native addon has no NativeDenseTrainer (rebuild it: npm run build:native)');
      return `C++ fused step on a worker thread; ${await forwardPasses(opts.wasmDir)}`;
    },
    activate: () => activateWithEngine(engine),
  };
}

/**
 * Where a fused engine's models run forward (validation losses, forecasts), loading what that
 * needs: dense models in C++ (Forecaster.nativeForward) when the addon loads, LSTMs and otherwise
 * everything on the CPU-side tfjs backend.
 */
async function forwardPasses(wasmDir: string): Promise<string> {
  const tfjs = await loadInferenceBackend(wasmDir);
  let cpp = false;
  try {
    cpp = typeof loadAddon().NativeDenseTrainer === 'function';
  } catch {
    // no addon: tfjs runs every forward pass
  }
  return cpp ? `forward passes in C++, LSTMs on ${tfjs}` : `forward passes on ${tfjs}`;
}

/** Loads the CPU-side tfjs backend a fused engine's models predict on: WASM, else plain JS. */
async function loadInferenceBackend(wasmDir: string): Promise<string> {
  for (const c of [wasm(wasmDir), cpu()]) {
    try {
      await c.load();
      return c.name;
    } catch {
      // wasm missing: the next (plain JS) always loads
    }
  }
  throw new Error('no CPU-side tfjs backend for inference');
}

async function activateWithEngine(engine: FusedEngine): Promise<void> {
  await activate(tf.findBackend('wasm') ? 'wasm' : 'cpu');
  setFusedEngine(engine);
}

const PROBE_SCRIPT = fileURLToPath(new URL('./gpu/adapter-probe.js', import.meta.url));
/** Starting Node and Dawn takes well under a second; a driver that hangs must not hold up every command. */
const PROBE_TIMEOUT_MS = 20_000;
const NO_ADAPTER = 'Dawn found no WebGPU adapter (needs a Vulkan loader + GPU driver: libvulkan1 and GLVND, VK_DRIVER_FILES; see scripts/gpu-check.sh)';
let probeResult: Promise<{ name: string; software: boolean }> | undefined;

/**
 * Which adapter Dawn offers, asked in a child process (gpu/adapter-probe.ts). Dawn prints its
 * adapter warnings from native code straight to file descriptor 2, on every process that creates
 * an instance; most nodes have no GPU but Mesa's software adapter, which is refused anyway, so
 * those processes never load Dawn and its lines go to the debug log instead of every command's
 * terminal. The child also keeps a crashing driver out of this process.
 */
function probeDawnAdapter(flags: string[], log: Logger): Promise<{ name: string; software: boolean }> {
  probeResult ??= new Promise<{ name: string; software: boolean }>((resolve, reject) => {
    // LP_NUM_THREADS=0: Mesa's software adapter would start a thread per CPU only to be asked its name (systemd's TasksMax counts them).
    const env = { ...process.env, LP_NUM_THREADS: process.env.LP_NUM_THREADS ?? '0' };
    const child = spawn(process.execPath, [PROBE_SCRIPT, JSON.stringify(flags)], { stdio: ['ignore', 'pipe', 'pipe'], timeout: PROBE_TIMEOUT_MS, env });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => reject(new Error(`the WebGPU adapter probe could not start: ${e.message}`)));
    child.once('close', (code, signal) => {
      for (const line of err.split('\n').filter((l) => l.trim() !== '')) log.debug({ line }, 'Dawn wrote on stderr while probing its adapter');
      let answer: ProbeAnswer | undefined;
      try {
        answer = JSON.parse(out) as ProbeAnswer;
      } catch {
        const how = signal ? `was ended by ${signal}${signal === 'SIGTERM' ? ` (no answer within ${PROBE_TIMEOUT_MS / 1000} s)` : ''}` : `exited with code ${code}`;
        return reject(new Error(`the WebGPU adapter probe ${how} without an answer${err.trim() ? `: ${err.trim().split('\n').pop()}` : ''}`));
      }
      if (answer.missingPackage) return reject(new Error('webgpu is not installed (optional; npm install webgpu where its native download is possible)'));
      if (answer.error) return reject(new Error(answer.error));
      if (!answer.adapter) return reject(new Error(NO_ADAPTER));
      resolve(answer.adapter);
    });
  });
  // A failed attempt is not cached: the reason is re-reported each time (as dawnAdapter's).
  probeResult.catch(() => (probeResult = undefined));
  return probeResult;
}

/**
 * One Dawn instance, adapter and device per process, created on first use and never released.
 * Dawn's instance must outlive its devices, and an instance that is garbage-collected while its
 * threads run crashes the process (seen: SIGSEGV on first submit, "futex facility returned an
 * unexpected error code" at exit), so it lives in module state rather than in each candidate.
 */
let dawn: Promise<{ gpu: GPU; adapter: GPUAdapter; name: string; software: boolean }> | undefined;
let dawnDevicePromise: Promise<GPUDevice> | undefined;

function dawnAdapter(flags: string[]): NonNullable<typeof dawn> {
  dawn ??= (async () => {
    const module = (await importOptional('webgpu')) as { create(flags: string[]): GPU; globals: object };
    Object.assign(globalThis, module.globals);
    const gpu = module.create(flags);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error(NO_ADAPTER);
    const info = (adapter as unknown as { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).info;
    const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'WebGPU adapter';
    // `gpu` travels with the adapter so that this module keeps the instance alive.
    return { gpu, adapter, name, software: Boolean(info?.isFallbackAdapter || info?.architecture === 'software') };
  })();
  // A failed attempt (package missing, no driver) is not cached: the reason is re-reported each time.
  dawn.catch(() => (dawn = undefined));
  return dawn;
}

/**
 * The device, with the adapter's own limits for what bounds the fused step's models (WebGPU's
 * defaults are far below a real GPU's: 16 KiB of workgroup memory, 128 MiB per storage binding;
 * see gpu/dense-trainer.ts fitsFusedStep).
 */
function dawnDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const { maxComputeWorkgroupStorageSize, maxStorageBufferBindingSize, maxBufferSize } = adapter.limits;
  dawnDevicePromise ??= adapter.requestDevice({ requiredLimits: { maxComputeWorkgroupStorageSize, maxStorageBufferBindingSize, maxBufferSize } });
  return dawnDevicePromise;
}

/** The directory holding tfjs-backend-wasm's .wasm files (Node cannot fetch them by URL). */
export function defaultWasmDir(): string {
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
}

function wasm(dir: string): Candidate {
  return {
    name: 'wasm',
    activate: () => activate('wasm'),
    async load() {
      // tfjs only says "failed to initialise" when a .wasm file is missing; name the file instead.
      for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) {
        if (!existsSync(join(dir, f))) throw new Error(`${f} not found in ${dir}`);
      }
      const m = (await import('@tensorflow/tfjs-backend-wasm')) as typeof import('@tensorflow/tfjs-backend-wasm');
      m.setWasmPaths(dir);
      await activate('wasm');
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      return `WebAssembly${simd ? ' SIMD' : ''}, 1 thread`;
    },
  };
}

function cpu(): Candidate {
  return {
    name: 'cpu',
    activate: () => activate('cpu'),
    async load() {
      await activate('cpu');
      return 'plain JavaScript';
    },
  };
}

export function defaultCandidates(opts: { wasmDir?: string; webgpuFlags?: string[]; allowSoftwareAdapter?: boolean; logger?: Logger } = {}): Candidate[] {
  const wasmDir = opts.wasmDir ?? defaultWasmDir();
  const allowSoftwareAdapter = opts.allowSoftwareAdapter ?? process.env.ICOSFL_WEBGPU_SOFTWARE === '1';
  return [
    tfjsNode('tfjs-node-gpu'),
    webgpu({ flags: opts.webgpuFlags ?? [], allowSoftwareAdapter, wasmDir, logger: opts.logger }),
    tfjsNode('tfjs-node'),
    native({ wasmDir }),
    wasm(wasmDir),
    cpu(),
  ];
}

/** Tries every candidate once; a candidate that throws is reported, never fatal. */
export async function loadBackends(candidates: Candidate[], logger?: Logger): Promise<BackendStatus[]> {
  const out: BackendStatus[] = [];
  for (const c of candidates) {
    try {
      const device = await c.load();
      out.push({ name: c.name, loaded: true, device });
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0]!;
      logger?.info({ backend: c.name, reason }, 'backend not available');
      out.push({ name: c.name, loaded: false, reason });
    }
  }
  return out;
}

/** One turn of the event loop (I/O, timers, the sampler's messages) between synchronous tfjs steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Training samples/s of `spec` on the active backend: one warm-up batch (shader and kernel
 * compilation), then the best of three runs of `batches` timed batches of random data, each run
 * made of train() calls shaped like the daemon's job's (job.ts):
 * - on tfjs, one synchronous call per batch with a turn of the event loop after it, so the daemon
 *   (ring pushes, control socket) stays responsive while a slow CPU calibrates for seconds; only
 *   the batches are timed, not the turns between them;
 * - on a fused engine (trainsOffMainThread), one call for all the batches, as the job trains a
 *   whole epoch per call. A call per batch would time mostly the GPU's per-call submission and
 *   readback (~1 ms on an H100), which a round pays once, and rank the GPU near the CPU.
 */
export async function calibrate(spec: ModelSpec, config: Pick<TrainerConfig, 'batch_size' | 'calibration_batches' | 'learning_rate' | 'seed'>): Promise<number> {
  const { lookback: L, horizon: H, channels: C } = spec;
  const B = config.batch_size;
  const n = B * config.calibration_batches;
  const random = seededRandom(config.seed);
  const x = Float32Array.from({ length: n * L * C }, () => random());
  const y = Float32Array.from({ length: n * H * C }, () => random());
  const batch = (k: number) => ({ x: x.subarray(k * B * L * C, (k + 1) * B * L * C), y: y.subarray(k * B * H * C, (k + 1) * B * H * C), n: B, lookback: L, horizon: H, channels: C, skipped: 0 });
  await yieldToEventLoop();
  const f = new Forecaster(spec, { seed: config.seed, learningRate: config.learning_rate, scaler: { mean: new Array(C).fill(0.5), std: new Array(C).fill(0.3) } });
  try {
    await f.train(batch(0), { epochs: 1, batchSize: B, seed: 1 });
    await yieldToEventLoop();
    // Best of three: on a shared machine one slow run is contention, not the backend.
    let best = 0;
    for (let r = 0; r < 3; r++) {
      let samples = 0;
      let seconds = 0;
      const calls = f.trainsOffMainThread ? [{ ...batch(0), x, y, n }] : Array.from({ length: config.calibration_batches }, (_, k) => batch(k));
      for (const [k, call] of calls.entries()) {
        const t = await f.train(call, { epochs: 1, batchSize: B, seed: 2 + r * config.calibration_batches + k });
        samples += t.samples;
        seconds += t.seconds;
        await yieldToEventLoop();
      }
      best = Math.max(best, samples / seconds);
    }
    return best;
  } finally {
    f.dispose();
  }
}

export interface BackendChoice {
  chosen: BackendName;
  statuses: BackendStatus[];
}

/**
 * Loads the configured backend (BACKEND_UNAVAILABLE if it cannot) or, for 'auto', every
 * candidate; calibrates each that loaded and leaves the fastest active.
 */
export async function selectBackend(
  config: TrainerConfig,
  spec: ModelSpec,
  opts: { candidates?: Candidate[]; logger?: Logger; calibrateAll?: boolean } = {},
): Promise<BackendChoice> {
  const all = opts.candidates ?? defaultCandidates({ logger: opts.logger });
  const wanted = config.backend === 'auto' ? all : all.filter((c) => c.name === config.backend);
  if (wanted.length === 0) throw new RangeError(`backend must be 'auto' or one of ${BACKEND_NAMES.join(', ')}, got '${config.backend}'`);
  const statuses = await loadBackends(wanted, opts.logger);
  const loaded = statuses.filter((s) => s.loaded);
  if (loaded.length === 0) {
    const why = statuses.map((s) => `${s.name}: ${s.reason}`).join('; ');
    throw new IcosflError('BACKEND_UNAVAILABLE', `no TensorFlow.js backend could be loaded (${why})`, { details: { statuses } });
  }
  if (loaded.length === 1 && !opts.calibrateAll) {
    await wanted.find((c) => c.name === loaded[0]!.name)!.activate();
    return { chosen: loaded[0]!.name, statuses };
  }
  for (const s of loaded) {
    await wanted.find((c) => c.name === s.name)!.activate();
    try {
      s.samplesPerS = await calibrate(spec, config);
    } catch (err) {
      s.loaded = false;
      s.reason = `calibration failed: ${(err as Error).message.split('\n')[0]}`;
    }
    opts.logger?.info({ backend: s.name, samplesPerS: s.samplesPerS, reason: s.reason }, 'backend calibrated');
  }
  const ranked = loaded.filter((s) => s.loaded).sort((a, b) => (b.samplesPerS ?? 0) - (a.samplesPerS ?? 0));
  if (ranked.length === 0) throw new IcosflError('BACKEND_UNAVAILABLE', 'every loaded backend failed its calibration', { details: { statuses } });
  const chosen = ranked[0]!.name;
  await wanted.find((c) => c.name === chosen)!.activate();
  return { chosen, statuses };
}
