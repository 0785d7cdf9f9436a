import { closeSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { IcosflError } from './errors.js';
import { errnoOf, storageHealth, type StorageKind } from './storage-health.js';

/**
 * Writes `path` so that a crash leaves the old file or the new one, never half of either: a
 * temporary file beside it, fsync, rename over it, fsync the directory. Used for every state
 * file (models, coordinator snapshots and aggregates).
 * A failed write (ENOSPC, EDQUOT, EIO, … at any step) removes the temporary file, leaves the
 * previous `path` as it was, is recorded in storageHealth under `kind`, and throws
 * STATE_WRITE_FAILED naming the path and the errno; the next write that succeeds clears it.
 * `exclusive`: never replace an existing file (EEXIST): the temporary file is hard-linked into
 * place instead of renamed, which is as atomic and fails if `path` exists (key files).
 */
export interface AtomicWriteOptions {
  /** What the file is, for storageHealth and the error message. */
  kind: StorageKind;
  /** Default 0o600. */
  mode?: number;
  exclusive?: boolean;
}

export function writeFileAtomic(path: string, chunks: Uint8Array[], opts: AtomicWriteOptions): void {
  const { kind, mode = 0o600, exclusive = false } = opts;
  const tmp = `${path}.tmp-${process.pid}`;
  let renamed = false;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      for (const c of chunks) {
        let written = 0;
        while (written < c.length) written += writeSync(fd, c, written, c.length - written);
      }
      fsyncSync(fd);
    } finally {
      // close() can report a deferred write error too (NFS): it fails the write like the others.
      closeSync(fd);
    }
    if (exclusive) {
      try {
        linkSync(tmp, path);
      } finally {
        rmSync(tmp, { force: true });
      }
    } else renameSync(tmp, path);
    renamed = true;
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (err) {
    if (!renamed) rmSync(tmp, { force: true });
    // An existing file under `exclusive` is a refusal, not a storage failure.
    if (exclusive && !renamed && (err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
    throw writeFailed(kind, path, err, renamed ? 'the new file is in place but its directory entry may not be durable' : 'the previous file is intact');
  }
  storageHealth.succeeded(kind, path);
}

/** Records a failed write of `path` and returns the STATE_WRITE_FAILED error that reports it. */
export function writeFailed(kind: StorageKind, path: string, err: unknown, outcome: string): IcosflError {
  const f = storageHealth.failed(kind, path, err);
  const hint = f.errno === 'ENOSPC' || f.errno === 'EDQUOT' ? '; free space on its filesystem (it is retried at the next save)' : '';
  return new IcosflError('STATE_WRITE_FAILED', `cannot write ${kind} file ${path}: ${f.errno} (${(err as Error)?.message ?? String(err)}); ${outcome}${hint}`, {
    cause: err,
    details: { path, kind, errno: errnoOf(err) },
  });
}
