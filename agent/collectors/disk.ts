import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { counterRate } from './counter-rate.js';
import { ProcFile } from './proc-file.js';
import { malformed } from './read-source.js';
import type { CollectorSource } from './types.js';

/** /proc/diskstats counts sectors of 512 bytes whatever the device's real sector size. */
const SECTOR_BYTES = 512;

export interface DiskSectors {
  read: number;
  written: number;
}

/** Parses /proc/diskstats: `major minor name reads merged sectors_read ms writes merged sectors_written …`. */
export function parseDiskstats(text: string): Map<string, DiskSectors> {
  const out = new Map<string, DiskSectors>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/\s+/);
    if (fields.length === 1 && fields[0] === '') continue;
    const read = Number(fields[5]);
    const written = Number(fields[9]);
    if (fields.length < 14 || !Number.isFinite(read) || !Number.isFinite(written)) {
      throw malformed('disk', `/proc/diskstats line ${i + 1}`, 'major, minor, name and at least 11 counters');
    }
    out.set(fields[2]!, { read, written });
  }
  return out;
}

/** Names of partitions and of virtual block devices, for hosts whose /sys/block is not visible. */
const NOT_A_DISK = /^(?:(?:loop|ram|zram|dm-|md|nbd|sr|fd)\d+|(?:[hsv]|xv)d[a-z]+\d+|(?:nvme\d+n\d+|mmcblk\d+)p\d+)$/;

/**
 * Whether a block device is a whole physical disk. /sys/block lists whole devices only (no
 * partitions), and among those only real hardware has a `device` link; loop, zram, ram, md and
 * dm (LVM, dm-crypt) have none. Counting dm or md as well would count every byte twice, once
 * on the mapper and once on the disk beneath it.
 */
export function isWholeDisk(sysRoot: string, name: string): boolean {
  const block = join(sysRoot, 'block');
  if (!existsSync(block)) return !NOT_A_DISK.test(name);
  return existsSync(join(block, name, 'device'));
}

export const diskSource: CollectorSource = {
  name: 'disk',
  defaultEnabled: true,
  metrics: {
    disk_read_bytes_per_s: { unit: 'bytes/s', help: 'Bytes read per second, summed over whole physical disks' },
    disk_write_bytes_per_s: { unit: 'bytes/s', help: 'Bytes written per second, summed over whole physical disks' },
  },
  create(ctx) {
    const file = new ProcFile('disk', join(ctx.procRoot, 'diskstats'));
    // Whether a name is a disk does not change while it exists: decide once per name, not per sample.
    const wholeDisk = new Map<string, boolean>();
    let prev: Map<string, DiskSectors> | undefined;
    let prevAt = 0;
    return {
      name: 'disk',
      metrics: ['disk_read_bytes_per_s', 'disk_write_bytes_per_s'],
      async collect() {
        const cur = parseDiskstats(file.read());
        const now = ctx.clock();
        let read = prev === undefined ? NaN : 0;
        let written = read;
        for (const [name, c] of cur) {
          let disk = wholeDisk.get(name);
          if (disk === undefined) wholeDisk.set(name, (disk = isWholeDisk(ctx.sysRoot, name)));
          const p = prev?.get(name);
          if (!disk || p === undefined) continue;
          read += counterRate(p.read, c.read, now - prevAt) * SECTOR_BYTES;
          written += counterRate(p.written, c.written, now - prevAt) * SECTOR_BYTES;
        }
        prev = cur;
        prevAt = now;
        return { disk_read_bytes_per_s: read, disk_write_bytes_per_s: written };
      },
      close() {
        file.close();
      },
    };
  },
};
