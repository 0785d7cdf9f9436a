import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_METRICS, METRICS } from '../../../agent/collectors/index.js';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { REPO_ROOT } from '../../helpers/paths.js';

const EXAMPLE = join(REPO_ROOT, 'agent', 'config', 'agent.example.toml');

test('the shipped example config is valid and states the defaults', () => {
  const fromExample = loadAgentConfig({ configPath: EXAMPLE, env: {} });
  const defaults = loadAgentConfig({ env: {}, defaultPath: join(REPO_ROOT, 'no-such-file.toml') });
  const { source: _a, ...a } = fromExample;
  const { source: _b, ...b } = defaults;
  void _a;
  void _b;
  assert.equal(a, b);
  assert.equal(fromExample.sampler.metrics, [...DEFAULT_METRICS]);
});

test('the example lists every known metric name', async () => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(EXAMPLE, 'utf8');
  for (const name of Object.keys(METRICS)) assert.ok(text.includes(name), `${name} is listed in the example`);
});

test.run();
