import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AddonInfo } from '../common/version.js';

/**
 * Loads the compiled addon once. `ICOSFL_NATIVE_ADDON` (an absolute path to a .node file) wins,
 * so CI can run the same tests against the node-gyp build; otherwise build/Release/icosfl_native.node
 * at the package root (cmake-js and node-gyp both put it there). Loaded lazily: importing the
 * wrapper for its types costs nothing and needs no build.
 */
export interface NativeRingHandle {
  /** The staging sample (C++ memory): the timestamp, and one value per channel. */
  readonly stagingTimestamp: Float64Array;
  readonly staging: Float32Array;
  openInfo(): { created: boolean; movedAsideTo: string; corruptReason: string; reservedBytes: number };
  /** A plain function (no `this`): pushes the sample written into the staging arrays. */
  pushStaged(): void;
  pushBatch(timestampsMs: Float64Array, values: Float32Array): void;
  size(): number;
  latest(n: number): [Float64Array, Float32Array];
  range(fromMs: number, toMs: number): [Float64Array, Float32Array];
  stats(): { count: Float64Array; mean: Float64Array; std: Float64Array; min: Float64Array; max: Float64Array };
  windows(lookback: number, horizon: number, stride: number): { x: Float32Array; y: Float32Array; n: number; skipped: number };
  close(): void;
}

/** A ring file's header, read without locking or mapping it (native/src/ring.cpp Ring::inspect). */
export interface RingHeaderInfo {
  /** Magic, checksum and field ranges good; `reason` says why not. */
  valid: boolean;
  reason: string;
  version: number;
  capacity: number;
  channels: number;
  dtype: number;
  schemaTag: string;
  writeSequence: number;
  fileBytes: number;
  allocatedBytes: number;
}

/** The fused CPU training step (native/src/dense-step-addon.cpp); see native/dense-trainer.ts. */
export interface NativeDenseTrainerHandle {
  train(
    weights: Float32Array,
    x: Float32Array,
    t: Float32Array,
    order: Uint32Array,
    rows: number,
    epochs: number,
    batchSize: number,
    learningRate: number,
  ): Promise<{ weights: Float32Array; epochLosses: Float64Array }>;
  resetOptimizer(): void;
  forward(weights: Float32Array, x: Float32Array, rows: number): Float32Array;
}

export interface NativeAddon {
  NativeRing: new (path: string, capacity: number, channels: number, schemaTag: string) => NativeRingHandle;
  NativeDenseTrainer: new (layout: Record<string, number>, adam: Record<string, number>) => NativeDenseTrainerHandle;
  sdNotify(state: string): boolean;
  inspectRing(path: string): RingHeaderInfo;
  /** The ring file format this build reads and writes (ring.hpp FORMAT_VERSION). */
  formatVersion: number;
  /** The Node-API version it was compiled against (NAPI_VERSION); absent in builds before 0.1.0's `version` command. */
  napiVersion?: number;
  /** Does nothing: the cost of one Node-API call, for the ring benchmark. */
  callFloor(): void;
}

// dist/native/load-addon.js → ../../build/Release (the package root).
const DEFAULT_ADDON = fileURLToPath(new URL('../../build/Release/icosfl_native.node', import.meta.url));

let addon: NativeAddon | undefined;

export function addonPath(): string {
  return process.env.ICOSFL_NATIVE_ADDON || DEFAULT_ADDON;
}

export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const path = addonPath();
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    throw new Error(`cannot load the native addon ${path}: build it with \`npm run build:native\` (cmake-js) or \`npx node-gyp rebuild\``, { cause: err });
  }
  return addon;
}

/** What `version` reports about the addon; a build that does not load is reported, not thrown. */
export function addonInfo(): AddonInfo {
  const path = addonPath();
  try {
    const a = loadAddon();
    return { path, napiVersion: a.napiVersion ?? null, ringFormatVersion: a.formatVersion, error: null };
  } catch (err) {
    const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
    const why = cause?.code === 'MODULE_NOT_FOUND' ? 'no such file' : (cause?.message ?? String(err)).split('\n')[0]!;
    return { path, napiVersion: null, ringFormatVersion: null, error: why };
  }
}
