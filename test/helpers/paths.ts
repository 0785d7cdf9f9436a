import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: tests run compiled from dist/test/…, fixtures stay in test/fixtures/. */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
export const SHARED_DATA = join(REPO_ROOT, '..', 'shared', 'data');
export const DIST = join(REPO_ROOT, 'dist');

/** A fresh temporary directory; call the returned cleanup in `test.after`. */
export function tempDir(prefix = 'icosfl-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
