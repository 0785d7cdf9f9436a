import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { agentConfigReference } from '../../../agent/config/reference.js';
import { configReference } from '../../../common/config/reference.js';
import { coordinatorConfigReference } from '../../../coordinator/config/reference.js';
import { configDoc } from '../../../scripts/config-doc.js';
import { DIST, REPO_ROOT, tempDir } from '../../helpers/paths.js';

/** The configuration reference comes from the schemas alone; docs/CONFIG.md must be what it generates. */
const { dir, cleanup } = tempDir('icosfl-config-doc-');
test.after(cleanup);
const SCRIPT = join(DIST, 'scripts', 'config-doc.js');

test('docs/CONFIG.md is up to date with the config schemas (regenerate: node dist/scripts/config-doc.js)', () => {
  assert.is(readFileSync(join(REPO_ROOT, 'docs', 'CONFIG.md'), 'utf8'), configDoc());
  const r = spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
});

test('the script writes a file and --check refuses a stale one', () => {
  const file = join(dir, 'CONFIG.md');
  assert.is(spawnSync(process.execPath, [SCRIPT, file], { encoding: 'utf8' }).status, 0);
  assert.is(readFileSync(file, 'utf8'), configDoc());
  writeFileSync(file, configDoc().replace('| `interval_ms` |', '| `interval` |'));
  const stale = spawnSync(process.execPath, [SCRIPT, '--check', file], { encoding: 'utf8' });
  assert.is(stale.status, 1);
  assert.match(stale.stderr, `${file} is out of date with the config schemas; regenerate it with: npm run build && node dist/scripts/config-doc.js`);
});

test('every key of both programs has a description, a type and its variable; every section a description', () => {
  for (const [prefix, sections] of [['ICOSFL_', agentConfigReference()], ['ICOSFL_COORD_', coordinatorConfigReference()]] as const) {
    assert.ok(sections.length >= 4);
    for (const s of sections) {
      assert.ok(s.description.length > 10, `[${s.section}] has a description (.describe() on the section)`);
      for (const k of s.keys) {
        assert.ok(k.description.length > 10, `${s.section}.${k.key} has a description (.describe() in its schema)`);
        assert.is(k.env, `${prefix}${s.section.toUpperCase()}_${k.key.toUpperCase()}`);
        assert.ok(k.type !== '' && !k.type.includes('effects'), `${s.section}.${k.key}: type ${k.type}`);
      }
    }
  }
});

test('known keys: type, default, range, choices as the schema says', () => {
  const key = (section: string, name: string) => agentConfigReference().find((s) => s.section === section)!.keys.find((k) => k.key === name)!;
  assert.equal([key('sampler', 'interval_ms').type, key('sampler', 'interval_ms').default, key('sampler', 'interval_ms').allowed], ['integer', '1000', '50 to 3600000']);
  assert.equal([key('federation', 'codec').default, key('federation', 'codec').allowed], ['"ckks"', '"ckks", "plaintext"']);
  assert.equal([key('federation', 'presence_interval_s').type, key('federation', 'presence_interval_s').allowed], ['number', '> 0, ≤ 3600']);
  assert.is(key('trainer', 'backend').default, '"auto"');
  const model = coordinatorConfigReference().find((s) => s.section === 'model')!;
  assert.equal(model.keys.find((k) => k.key === 'metrics')!.default, '["cpu_busy_pct", "mem_used_pct"]');
  assert.match(model.keys.find((k) => k.key === 'metrics')!.allowed, /^1 to 64 entries; each matches /);
});

test('a section added to a schema is in the reference without naming it anywhere', () => {
  const schema = z.object({
    privacy: z
      .object({
        epsilon: z.number().positive().max(100).default(8).describe('Privacy budget per session.'),
        mode: z.enum(['off', 'dp']).default('off').describe('Differential privacy or none.'),
        peers: z.array(z.string()).default([]).describe('Peers.'),
      })
      .strict()
      .default({})
      .describe('Differential privacy.'),
  });
  const [s] = configReference(schema, (a, b) => `P_${a}_${b}`.toUpperCase());
  assert.equal(s, {
    section: 'privacy',
    description: 'Differential privacy.',
    keys: [
      { section: 'privacy', key: 'epsilon', type: 'number', default: '8', allowed: '> 0, ≤ 100', env: 'P_PRIVACY_EPSILON', description: 'Privacy budget per session.' },
      { section: 'privacy', key: 'mode', type: 'string', default: '"off"', allowed: '"off", "dp"', env: 'P_PRIVACY_MODE', description: 'Differential privacy or none.' },
      { section: 'privacy', key: 'peers', type: 'list of strings', default: '[]', allowed: '', env: 'P_PRIVACY_PEERS', description: 'Peers.' },
    ],
  });
});

test.run();
