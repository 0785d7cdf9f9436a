/**
 * Run as a child process by backends.ts (probeDawnAdapter): creates a Dawn instance, asks for an
 * adapter and prints what it found as one JSON line on stdout, then exits. Dawn writes its own
 * warnings straight to file descriptor 2 from native code (e.g. "maxDynamicUniformBuffersPer
 * PipelineLayout artificially reduced" for Mesa's lavapipe), where no JavaScript can catch them;
 * here they land in the parent's pipe, which logs them at debug level.
 * Usage: node adapter-probe.js '<Dawn flags as a JSON array>'
 */
import { writeSync } from 'node:fs';

export interface ProbeAnswer {
  /** The adapter Dawn would hand out, or null when it found none. */
  adapter: { name: string; software: boolean } | null;
  /** Why the probe could not ask (the package is missing, Dawn threw). */
  error?: string;
  missingPackage?: boolean;
}

async function probe(flags: string[]): Promise<ProbeAnswer> {
  // A specifier in a variable keeps tsc from resolving the optional package.
  const specifier = 'webgpu';
  let module: { create(flags: string[]): GPU };
  try {
    module = (await import(specifier)) as typeof module;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { adapter: null, error: e.message.split('\n')[0]!, missingPackage: e.code === 'ERR_MODULE_NOT_FOUND' };
  }
  const gpu = module.create(flags);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { adapter: null };
  const info = (adapter as unknown as { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).info;
  const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'WebGPU adapter';
  return { adapter: { name, software: Boolean(info?.isFallbackAdapter || info?.architecture === 'software') } };
}

const flags = JSON.parse(process.argv[2] ?? '[]') as string[];
const answer = await probe(flags).catch((err: Error): ProbeAnswer => ({ adapter: null, error: err.message.split('\n')[0]! }));
writeSync(1, JSON.stringify(answer) + '\n');
// Dawn's threads would keep the process alive; the answer is written (synchronously).
process.exit(0);
