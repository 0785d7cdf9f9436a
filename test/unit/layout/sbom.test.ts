import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

// scripts/sbom.mjs: the CycloneDX SBOM of the runtime dependencies, from the lock file (offline).
// It refuses a dependency pinned by a range or missing from the SBOM, so this fails on either.
test('npm run sbom writes a well-formed CycloneDX SBOM naming every runtime dependency at its pinned version', () => {
  const { dir, cleanup } = tempDir('icosfl-sbom-');
  try {
    const file = join(dir, 'sbom.json');
    const out = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'sbom.mjs'), file], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.match(out, /components \(CycloneDX 1\.\d+\) written to/);
    const bom = JSON.parse(readFileSync(file, 'utf8')) as { bomFormat: string; components: { name: string; group?: string; version: string; purl: string }[] };
    assert.is(bom.bomFormat, 'CycloneDX');
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const names = new Map(bom.components.map((c) => [c.group ? `${c.group}/${c.name}` : c.name, c.version]));
    for (const [name, version] of Object.entries(pkg.dependencies)) {
      assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is pinned exactly`);
      assert.is(names.get(name), version, name);
    }
    // Dev-only tools are not shipped, so not in the runtime SBOM.
    assert.not.ok(names.has('typescript'));
    assert.not.ok(names.has('fast-check'));
  } finally {
    cleanup();
  }
});

test.run();
