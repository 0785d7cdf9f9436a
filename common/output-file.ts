import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { outputError } from './system-errors.js';

/**
 * An export or picture a command writes for its user (`rounds export --out`, `predict --plot`):
 * written beside `path` and renamed over it, so a failure leaves any previous file as it was and
 * no half file behind. Every failure is OUTPUT_UNWRITABLE (exit 73) naming `flag` and `path`.
 */
export function writeOutputFile(flag: string, path: string, text: string): void {
  if (path.trim() === '') throw new RangeError(`${flag} needs a file path, got ''`);
  let isDirectory = false;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    // Absent (the usual case) or unreachable: the write below says which.
  }
  if (isDirectory) throw outputError(path, Object.assign(new Error('is a directory'), { code: 'EISDIR', syscall: 'open', path }), flag);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // A parent that is a file (ENOTDIR): there is no temporary file to remove.
    }
    // The error names the temporary file; the user gave `path`.
    const e = err as NodeJS.ErrnoException;
    throw outputError(path, Object.assign(new Error(e.message, { cause: err }), { code: e.code, syscall: e.syscall, path }), flag);
  }
}
