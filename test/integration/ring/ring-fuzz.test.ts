import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../../helpers/paths.js';

// The C++ ring parser (native/src/ring.cpp, Ring::open and the accessors that trust what it
// validated) under libFuzzer with AddressSanitizer and UBSan, for a bounded time from a seed
// corpus of valid ring files: scripts/fuzz-ring.sh builds and runs native/fuzz/ring_open_fuzz.cpp.
// Any sanitizer report, crash, leak or timeout fails the test (the script exits non-zero and
// libFuzzer leaves the input in build/fuzz/). RING_FUZZ_RUNS / RING_FUZZ_SECONDS explore longer.
const RUNS = Number(process.env.RING_FUZZ_RUNS ?? 100_000);
const SECONDS = Number(process.env.RING_FUZZ_SECONDS ?? 40);
// Building with three sanitizers takes about a minute on a busy 2-core box.
const LIMIT_MS = (SECONDS + 240) * 1000;

test(`libFuzzer + ASan/UBSan on Ring::open: ${RUNS} runs or ${SECONDS} s, no finding`, async () => {
  const started = Date.now();
  const { code, signal, output } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolve) => {
    const child = spawn(join(REPO_ROOT, 'scripts', 'fuzz-ring.sh'), [String(RUNS), String(SECONDS)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
  const findings = output.split('\n').filter((l) => /ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: |deadly signal|Test unit written to/.test(l));
  const done = /Done (\d+) runs in (\d+) second/.exec(output);
  console.log(`  ${done ? `${done[1]} runs in ${done[2]} s` : 'no summary'}, ${((Date.now() - started) / 1000).toFixed(0)} s with the build; ${/stat::new_units_added:\s+(\d+)/.exec(output)?.[1] ?? '?'} new corpus units`);
  assert.equal(findings, [], output.slice(-4000));
  assert.is(signal, null, `killed by ${signal} after ${LIMIT_MS} ms`);
  assert.is(code, 0, output.slice(-4000));
  assert.ok(done && Number(done[1]) > 1000, 'libFuzzer ran more than a thousand inputs');
});

test.run();
