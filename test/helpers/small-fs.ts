import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, rmdirSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real, small filesystem to fill up: a tmpfs of `sizeBytes` mounted on a fresh directory (needs
 * root, which CI has; the test fails, never skips, without it). `fill()` writes a filler file
 * until the kernel says ENOSPC, so "full" is the filesystem's own verdict, not a mock's.
 */
export interface SmallFs {
  dir: string;
  /** Fills the filesystem up, then gives back `leaveBytes` (rounded to pages by tmpfs). */
  fill(leaveBytes?: number): void;
  /** Removes the filler files. */
  release(): void;
  freeBytes(): number;
  unmount(): void;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x5a);

export function mountSmallFs(sizeBytes: number, prefix = 'icosfl-smallfs-'): SmallFs {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a small tmpfs and so must run as root (CI does); run it with sudo');
  const dir = mkdtempSync(join(tmpdir(), prefix));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'icosfl-test', dir]);
  let fillers = 0;
  const fs: SmallFs = {
    dir,
    fill(leaveBytes = 0) {
      const path = join(dir, `.filler-${fillers++}`);
      const fd = openSync(path, 'w');
      let size = 0;
      try {
        // Bounded: a tmpfs of sizeBytes takes at most sizeBytes / 64 KiB chunks, then one partial write.
        for (let i = 0; i <= sizeBytes / CHUNK.length + 2; i++) {
          try {
            size += writeSync(fd, CHUNK);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw err;
          }
        }
        // tmpfs may still take a few bytes of the last page: fill them one page at a time.
        for (let i = 0; i < 64; i++) {
          try {
            size += writeSync(fd, CHUNK, 0, 4096);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw err;
          }
        }
        if (leaveBytes > 0) ftruncateSync(fd, Math.max(0, size - leaveBytes));
      } finally {
        closeSync(fd);
      }
    },
    release() {
      for (const f of readdirSync(dir)) if (f.startsWith('.filler-')) rmSync(join(dir, f), { force: true });
    },
    freeBytes() {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    unmount() {
      execFileSync('umount', ['-l', dir]);
      rmdirSync(dir);
    },
  };
  return fs;
}
