import type { SEALLibrary } from 'node-seal/implementation/seal.js';

/**
 * The one place that imports node-seal (Microsoft SEAL 4.1 compiled to WASM).
 *
 * Pinned to node-seal 6.0.3: 7.x needs WasmGC and exception-reference support that Node 20 lacks
 * (it fails to instantiate), while 6.0.3 loads on Node 20 and writes the same SEAL 4.1 formats.
 * The WASM instance is created once per process and shared; its heap never shrinks, so callers
 * reuse SEAL objects and `.delete()` every one they create (see seal-session.ts).
 * Imported lazily: the coordinator's code path never loads SEAL at all (a test checks it).
 */
let library: Promise<SEALLibrary> | undefined;

export function loadSeal(): Promise<SEALLibrary> {
  library ??= import('node-seal').then((m) => (m.default as unknown as () => Promise<SEALLibrary>)());
  return library;
}

export type { SEALLibrary };
