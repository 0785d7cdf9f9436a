import { closeSync, openSync, readSync } from 'node:fs';
import { sourceError } from './read-source.js';

/**
 * A /proc file kept open and re-read with one pread at offset 0 per sample. The kernel
 * regenerates procfs content on every read from offset 0, and open+fstat+read+close per file
 * per second measured 2–5× the CPU of a single pread on these machines (see the collectors
 * bench). procfs entries such as /proc/stat never go away, so a held descriptor is safe; after
 * any error the file is closed and opened afresh on the next read.
 */
export class ProcFile {
  private fd: number | undefined;
  private buf = Buffer.allocUnsafe(16 * 1024);

  constructor(
    private readonly collector: string,
    readonly path: string,
  ) {}

  read(): string {
    try {
      this.fd ??= openSync(this.path, 'r');
      for (;;) {
        const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
        if (n < this.buf.length) return this.buf.toString('latin1', 0, n);
        this.buf = Buffer.allocUnsafe(this.buf.length * 2); // content did not fit: read it whole again
      }
    } catch (cause) {
      this.close();
      throw sourceError(this.collector, this.path, cause);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
