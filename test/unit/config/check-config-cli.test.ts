import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES } from '../../helpers/paths.js';
import { runCli } from '../../integration/daemon/harness.js';

/** `icosfl-agent check-config` through the real entry point: exit codes and messages. */
const fx = (name: string) => join(FIXTURES, 'config', name);

test('a valid file: exit 0, the file named and the effective config printed as TOML', async () => {
  const r = await runCli(['check-config', '--config', fx('valid.toml'), '--set', 'sampler.interval_ms=750']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `config OK: ${fx('valid.toml')}`);
  assert.match(r.stdout, /\[sampler\]\ninterval_ms = 750/);
});

test('an invalid file: exit 78 naming the key and the file', async () => {
  const r = await runCli(['check-config', '--config', fx('unknown-key.toml')]);
  assert.is(r.code, 78);
  assert.match(r.stderr, `[CONFIG_INVALID] invalid configuration: sampler.intervl_ms (${fx('unknown-key.toml')}): unknown key`);
  const env = await runCli(['check-config', '--config', fx('valid.toml')], { ICOSFL_SAMPLER_INTERVAL_MS: '10' });
  assert.is(env.code, 78);
  assert.match(env.stderr, 'environment variable ICOSFL_SAMPLER_INTERVAL_MS');
  const missing = await runCli(['check-config', '--config', fx('nope.toml')]);
  assert.is(missing.code, 78);
  assert.match(missing.stderr, `config file ${fx('nope.toml')} does not exist`);
});

test.run();
