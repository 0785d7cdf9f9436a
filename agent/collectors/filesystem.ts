import { statfsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { IcosflError } from '../../common/errors.js';
import type { CollectorSource } from './types.js';

/** The fields of statfs(2) this needs, in blocks. */
export interface FsBlocks {
  blocks: number;
  bfree: number;
  bavail: number;
}

/**
 * Used percentage as df computes it: used / (used + available to unprivileged users), so the
 * blocks reserved for root count neither as used nor as room left. NaN for a size-0 filesystem.
 */
export function fsUsedPercent(s: FsBlocks): number {
  const used = s.blocks - s.bfree;
  const denominator = used + s.bavail;
  return denominator > 0 ? (used / denominator) * 100 : NaN;
}

export const DEFAULT_MOUNT_POINTS: readonly string[] = ['/'];

export const filesystemSource: CollectorSource = {
  name: 'filesystem',
  defaultEnabled: true,
  metrics: {
    fs_used_pct: { unit: 'percent', help: 'Used space of the fullest configured mount point (default /), as df computes it' },
  },
  create(ctx) {
    const mountPoints = ctx.options.filesystem?.mountPoints ?? DEFAULT_MOUNT_POINTS;
    if (!Array.isArray(mountPoints) || mountPoints.length === 0 || !mountPoints.every((p) => typeof p === 'string' && isAbsolute(p))) {
      throw new RangeError('filesystem.mountPoints must be a non-empty array of absolute paths');
    }
    return {
      name: 'filesystem',
      metrics: ['fs_used_pct'],
      // One channel for several mount points: the fullest one, because "a disk fills up" is what
      // an operator forecasts, and an average would hide a full /var behind an empty /data.
      async collect() {
        let fullest = -Infinity;
        for (const path of mountPoints) {
          let s: FsBlocks;
          try {
            s = statfsSync(path);
          } catch (cause) {
            throw new IcosflError('COLLECTOR_FAILED', `filesystem: statfs of mount point ${path} failed`, { cause, details: { path } });
          }
          const pct = fsUsedPercent(s);
          if (Number.isNaN(pct)) throw new IcosflError('COLLECTOR_FAILED', `filesystem: ${path} has size 0 (a pseudo filesystem such as /proc?)`, { details: { path } });
          fullest = Math.max(fullest, pct);
        }
        return { fs_used_pct: fullest };
      },
    };
  },
};
