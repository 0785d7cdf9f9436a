import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../../helpers/paths.js';

/** What `npm pack` puts in the package: the licence, the example configs, the config reference and the status page's files travel with the code. */
test('the npm package holds LICENSE, NOTICE, both example configs, docs/CONFIG.md and the status page', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  const [pack] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  const files = new Set(pack!.files.map((f) => f.path));
  for (const f of ['LICENSE', 'NOTICE', 'agent/config/agent.example.toml', 'coordinator/config/coordinator.example.toml', 'docs/CONFIG.md', 'dist/agent/cli.js', 'dist/common/cli-flags.js',
    'dist/coordinator/http/status-page.js', 'coordinator/http/page/index.html', 'coordinator/http/page/page.js', 'coordinator/http/page/page.css']) {
    assert.ok(files.has(f), `${f} is packed`);
  }
});

test('LICENSE is the Apache License 2.0 that package.json names', async () => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { license: string };
  assert.is(pkg.license, 'Apache-2.0');
  const text = readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8');
  assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
  assert.match(text, /END OF TERMS AND CONDITIONS/);
});

test.run();
