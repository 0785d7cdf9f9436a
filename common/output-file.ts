import { accessSync, constants, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import type { IcosflError } from './errors.js';
import { outputError } from './system-errors.js';

/**
 * Files a command writes for its user (`rounds export --out`, `predict --plot`): checked before
 * any work, then written beside `path` and renamed over it, so a failure leaves any previous file
 * as it was and no half file behind. Every failure is OUTPUT_UNWRITABLE (exit 73) naming the flag
 * and the path the user gave.
 */

/** A system error re-aimed at the path the user gave (Node's names a temporary file or a parent). */
function atPath(err: unknown, path: string): NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException;
  return Object.assign(new Error(e.message, { cause: err }), { code: e.code, syscall: e.syscall ?? 'open', path });
}

function isDirectory(flag: string, path: string): IcosflError {
  return outputError(path, Object.assign(new Error('is a directory'), { code: 'EISDIR', syscall: 'open', path }), flag);
}

function emptyPath(flag: string): RangeError {
  return new RangeError(`${flag} needs a file path, got ''`);
}

/** `path` can be created or replaced: not a directory, and it (or, absent, its parent) is writable. Creates nothing. */
export function checkOutputFile(flag: string, path: string): void {
  if (path.trim() === '') throw emptyPath(flag);
  let st: Stats | undefined;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw outputError(path, atPath(err, path), flag);
  }
  if (st?.isDirectory()) throw isDirectory(flag, path);
  try {
    if (st) accessSync(path, constants.W_OK);
    else accessSync(dirname(path), constants.W_OK | constants.X_OK);
  } catch (err) {
    throw outputError(path, atPath(err, path), flag);
  }
}

export function writeOutputFile(flag: string, path: string, text: string): void {
  if (path.trim() === '') throw emptyPath(flag);
  let st: Stats | undefined;
  try {
    st = statSync(path);
  } catch {
    // Absent (the usual case) or unreachable: the write below says which.
  }
  if (st?.isDirectory()) throw isDirectory(flag, path);
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
    throw outputError(path, atPath(err, path), flag);
  }
}
