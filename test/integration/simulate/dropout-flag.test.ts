import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, REPO_ROOT } from '../../helpers/paths.js';

/** `icosfl-simulate run --dropout RATE`: a rate out of range, a model without hidden units, or --dp as well is a usage error naming the flag. */
function simulate(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
  const r = spawnSync(process.execPath, [join(DIST, 'simulate', 'cli.js'), ...args], { encoding: 'utf8', env: { ...env, LOG_LEVEL: 'warn' }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const DATA = join(REPO_ROOT, 'data', 'gcd');

test('--dropout: bad rates, a linear model and --dp are refused before any work', () => {
  for (const rate of ['0', '0.95', 'half']) {
    const r = simulate('run', '--data', DATA, '--metrics', 'cpu,mem', '--dropout', rate);
    assert.is(r.status, exitCode('USAGE'), r.stderr);
    assertCleanStderr(r.stderr);
    assert.match(r.stderr, `--dropout must be a rate in (0, 0.9], got '${rate}'`);
  }
  const linear = simulate('run', '--data', DATA, '--metrics', 'cpu,mem', '--model', 'linear', '--dropout', '0.5');
  assert.is(linear.status, exitCode('USAGE'));
  assert.match(linear.stderr, '--dropout drops hidden units of the mlp model; --model is linear');
  const both = simulate('run', '--data', DATA, '--metrics', 'cpu,mem', '--dp', '--dropout', '0.5');
  assert.is(both.status, exitCode('USAGE'));
  assert.match(both.stderr, '--dropout and --dp each run a second session');
});

test.run();
