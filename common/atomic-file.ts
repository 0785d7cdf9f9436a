import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes `path` so that a crash leaves the old file or the new one, never half of either: a
 * temporary file beside it, fsync, rename over it, fsync the directory. Used for every state
 * file (models, coordinator snapshots and aggregates).
 */
export function writeFileAtomic(path: string, chunks: Uint8Array[], mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    for (const c of chunks) {
      let written = 0;
      while (written < c.length) written += writeSync(fd, c, written, c.length - written);
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
