import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { IcosflError } from '../common/errors.js';

/**
 * Output paths are checked before any work starts: a typo in `--plot` found after a long run
 * throws the run's results away. These create nothing but a requested output directory, so a
 * run that fails later leaves no empty file behind (and an existing file is not truncated).
 */
function unwritable(flag: string, path: string, why: string, cause?: unknown): IcosflError {
  return new IcosflError('OUTPUT_UNWRITABLE', `${flag} ${path}: ${why}; nothing was run`, { ...(cause === undefined ? {} : { cause }), details: { flag, path } });
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code ?? String(e);

/** `path` can be created or overwritten: its directory exists and is writable, and it is no directory or read-only file. */
export function checkOutputFile(flag: string, path: string): void {
  if (path.trim() === '') throw new RangeError(`${flag} needs a file path, got ''`);
  const full = resolve(path);
  let existing: ReturnType<typeof statSync> | undefined;
  try {
    existing = statSync(full);
  } catch (e) {
    if (errno(e) === 'ENOTDIR') throw unwritable(flag, path, 'a folder on its path is a file', e);
    if (errno(e) !== 'ENOENT') throw unwritable(flag, path, `cannot check it (${errno(e)})`, e);
  }
  if (existing?.isDirectory()) throw unwritable(flag, path, 'is a directory; give a file name');
  if (existing) {
    try {
      accessSync(full, constants.W_OK);
    } catch (e) {
      throw unwritable(flag, path, `the file is not writable (${errno(e)})`, e);
    }
    return;
  }
  const dir = dirname(full);
  let parent: ReturnType<typeof statSync>;
  try {
    parent = statSync(dir);
  } catch (e) {
    throw unwritable(flag, path, errno(e) === 'ENOENT' ? `the directory ${dir} does not exist` : `cannot reach the directory ${dir} (${errno(e)})`, e);
  }
  if (!parent.isDirectory()) throw unwritable(flag, path, `${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw unwritable(flag, path, `cannot create files in ${dir} (${errno(e)})`, e);
  }
}

/** `dir` exists (created with its parents) and is writable. */
export function prepareOutputDir(flag: string, dir: string): void {
  if (dir.trim() === '') throw new RangeError(`${flag} needs a directory path, got ''`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const why = errno(e) === 'EEXIST' || errno(e) === 'ENOTDIR' ? 'it, or a folder above it, is a file' : `cannot create it (${errno(e)})`;
    throw unwritable(flag, dir, why, e);
  }
  if (!statSync(dir).isDirectory()) throw unwritable(flag, dir, 'is a file, not a directory');
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw unwritable(flag, dir, `cannot create files in it (${errno(e)})`, e);
  }
}
