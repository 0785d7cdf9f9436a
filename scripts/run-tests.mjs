#!/usr/bin/env node
// Runs every compiled uvu test file (dist/test/**/*.test.js) in its own Node process and ends
// with the plain line CI reads: `N passed, N failed[, N skipped]`.
//   node scripts/run-tests.mjs [substring ...]   only files whose path contains a substring
// Unit tests run two at a time; integration and system tests (timing-sensitive, forking
// daemons) run one at a time after them. A file that crashes or times out without printing
// uvu's totals counts as one failed test, so nothing fails silently.
// With ICOSFL_GYP_ADDON=/path/to/icosfl_native.node (the node-gyp build; .ci/run sets it), the
// native ring and fused-step tests run a second time against that addon, counted in the same totals.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'dist', 'test');
const filters = process.argv.slice(2);
const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_S ?? 900) * 1000;
const PARALLEL = Number(process.env.TEST_JOBS ?? 2);

function listTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTests(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

function runFile(file, extraEnv = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[run-tests] timed out after ${FILE_TIMEOUT_MS / 1000} s\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const num = (label) => {
        const m = output.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm'));
        return m ? Number(m[1]) : undefined;
      };
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') ?? 0;
      let result;
      if (total === undefined || passed === undefined) result = { passed: 0, failed: 1, skipped: 0 };
      else {
        result = { passed, failed: total - passed - skipped, skipped };
        if ((code !== 0 || signal) && result.failed === 0) result.failed = 1;
      }
      resolve({ file, label: extraEnv.ICOSFL_NATIVE_ADDON ? ' [node-gyp addon]' : '', code, signal, output, ms: Date.now() - started, ...result });
    });
  });
}

async function runPool(files, jobs, extraEnv = {}) {
  const results = [];
  let next = 0;
  async function worker() {
    while (next < files.length) {
      const file = files[next++];
      const r = await runFile(file, extraEnv);
      const rel = relative(testDir, file) + r.label;
      const status = r.failed > 0 ? 'FAIL' : 'ok  ';
      process.stdout.write(`${status} ${rel}  (${r.passed} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)} s)\n`);
      if (r.failed > 0 || process.env.TEST_VERBOSE) process.stdout.write(r.output.replace(/^/gm, '     | ') + '\n');
      results.push(r);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  return results;
}

const all = listTests(testDir).filter((f) => filters.length === 0 || filters.some((s) => relative(testDir, f).includes(s)));
if (all.length === 0) {
  console.log('no test files matched');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const isSerial = (f) => /[/\\](integration|system)[/\\]/.test(f);
const results = [
  ...(await runPool(all.filter((f) => !isSerial(f)), PARALLEL)),
  ...(await runPool(all.filter(isSerial), 1)),
];
const gypAddon = process.env.ICOSFL_GYP_ADDON;
if (gypAddon) {
  const addonTests = all.filter((f) => /[/\\]ring[/\\]|native-dense\.test\.js$/.test(f));
  results.push(...(await runPool(addonTests, 1, { ICOSFL_NATIVE_ADDON: gypAddon })));
}
const sum = (k) => results.reduce((a, r) => a + r[k], 0);
const passed = sum('passed');
const failed = sum('failed');
const skipped = sum('skipped');
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
