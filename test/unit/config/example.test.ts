import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_METRICS, METRICS } from '../../../agent/collectors/index.js';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { agentConfigReference } from '../../../agent/config/reference.js';
import type { ReferenceSection } from '../../../common/config/reference.js';
import { loadCoordinatorConfig } from '../../../coordinator/config/load.js';
import { coordinatorConfigReference } from '../../../coordinator/config/reference.js';
import { REPO_ROOT } from '../../helpers/paths.js';

const EXAMPLE = join(REPO_ROOT, 'agent', 'config', 'agent.example.toml');
const COORDINATOR_EXAMPLE = join(REPO_ROOT, 'coordinator', 'config', 'coordinator.example.toml');

/** Keys of the reference (the schema) that the example file does not set. */
async function missingKeys(file: string, reference: ReferenceSection[]): Promise<string[]> {
  const { readFileSync } = await import('node:fs');
  const { parse } = await import('smol-toml');
  const example = parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  return reference.flatMap((s) => s.keys.filter((k) => example[s.section]?.[k.key] === undefined).map((k) => `${s.section}.${k.key}`));
}

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

test('each example sets every key of the reference, so it documents every key (a new key must be added there)', async () => {
  assert.equal(await missingKeys(EXAMPLE, agentConfigReference()), []);
  assert.equal(await missingKeys(COORDINATOR_EXAMPLE, coordinatorConfigReference()), []);
  // The coordinator's example parses against its schema too (its defaults: test/unit/coordinator/config.test.ts).
  assert.is(loadCoordinatorConfig({ configPath: COORDINATOR_EXAMPLE, env: {} }).source, COORDINATOR_EXAMPLE);
});

test.run();
