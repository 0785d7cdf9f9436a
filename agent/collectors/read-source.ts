import { readFileSync } from 'node:fs';
import { IcosflError } from '../../common/errors.js';

/**
 * Reads one /proc or /sys file whole. Synchronous on purpose: these files are generated in
 * memory by the kernel, a read takes microseconds, and the sampler runs in its own worker
 * thread; the promise API would cost four thread-pool round trips per file per sample.
 * Failures become COLLECTOR_FAILED naming the file, so the log says what to fix.
 */
export function readSource(collector: string, path: string, accessHint?: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch (cause) {
    throw sourceError(collector, path, cause, accessHint);
  }
}

/** A failed open or read of a source file as COLLECTOR_FAILED, saying what is wrong with it. */
export function sourceError(collector: string, path: string, cause: unknown, accessHint?: string): IcosflError {
  const code = (cause as NodeJS.ErrnoException).code;
  const denied = `is not readable by this user${accessHint ? ` (${accessHint})` : ''}`;
  const why = code === 'ENOENT' ? 'is missing' : code === 'EACCES' ? denied : 'could not be read';
  return new IcosflError('COLLECTOR_FAILED', `${collector}: ${path} ${why}`, { cause, details: { collector, path, errno: code } });
}

/** A parse failure of a source file, naming the file and what was expected. */
export function malformed(collector: string, what: string, expected: string): IcosflError {
  return new IcosflError('COLLECTOR_FAILED', `${collector}: ${what} is malformed: expected ${expected}`, {
    details: { collector, what },
  });
}

/** Parses a sysfs integer attribute such as energy_uj (one decimal number and a newline). */
export function parseSysfsInt(collector: string, path: string, text: string): number {
  const trimmed = text.trim();
  const v = Number(trimmed);
  if (trimmed === '' || !Number.isSafeInteger(v) || v < 0) throw malformed(collector, path, 'a non-negative integer');
  return v;
}
