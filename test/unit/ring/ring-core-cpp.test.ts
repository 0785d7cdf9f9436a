import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

// The pure C++ ring compiles and passes its own tests without Node headers: plain g++, no
// include path but native/src, no Node-API symbols to link.
const { dir, cleanup } = tempDir('icosfl-ring-cpp-');
test.after(cleanup);

test('native/test/ring-core-test.cpp builds with plain g++ and passes', () => {
  const exe = join(dir, 'ring-core-test');
  const src = (p: string) => join(REPO_ROOT, 'native', p);
  execFileSync('g++', ['-std=c++17', '-O1', '-Wall', '-Wextra', `-I${src('src')}`, src('test/ring-core-test.cpp'), src('src/ring.cpp'), src('src/sd-notify.cpp'), '-o', exe], { stdio: 'pipe' });
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  const out = execFileSync(exe, [scratch], { encoding: 'utf8' });
  assert.match(out, /ok wraparound and stats/);
  assert.match(out, /ok torn slot dropped/);
  assert.match(out, /all ok\n$/);
});

test.run();
