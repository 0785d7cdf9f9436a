import { chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { REPO_ROOT } from './paths.js';

/**
 * Spawn options that run a child as nobody (uid 65534) when the tests run as root, which passes
 * every permission check and so cannot meet EACCES itself. nobody must be able to reach the
 * checkout to run its CLIs: a checkout under a 0700 directory (mktemp -d, as CI clones) gets o+x
 * on each such ancestor for the child's run; `restore` puts the modes back. Not root: no change.
 */
export function asNobody(): { spawn: { uid?: number; gid?: number }; restore: () => void } {
  if (process.getuid?.() !== 0) return { spawn: {}, restore: () => undefined };
  const changed: { path: string; mode: number }[] = [];
  for (let dir = REPO_ROOT; ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      changed.push({ path: dir, mode });
      chmodSync(dir, mode | 0o001);
    }
    if (dirname(dir) === dir) break;
  }
  return { spawn: { uid: 65534, gid: 65534 }, restore: () => changed.reverse().forEach((c) => chmodSync(c.path, c.mode)) };
}
