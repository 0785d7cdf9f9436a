import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../../helpers/paths.js';

/**
 * Imports run one way along the data flow: a folder never imports one later in it, and the
 * simulation (the only code that drives both sides) is imported by nobody. Also: each heavy
 * dependency has one door (mqtt: the MQTT transport; aedes: the embedded broker; node-seal: crypto).
 */
const FORBIDDEN: Record<string, string[]> = {
  coordinator: ['agent', 'simulate'],
  agent: ['coordinator', 'simulate'],
  native: ['agent', 'coordinator', 'simulate'],
  common: ['agent', 'coordinator', 'native', 'simulate'],
};
const PACKAGE_DOORS: Record<string, (file: string) => boolean> = {
  mqtt: (f) => f === 'common/transport/mqtt.ts',
  aedes: (f) => f.startsWith('coordinator/broker/'),
  'node-seal': (f) => f.startsWith('common/crypto/'),
};

export interface SourceFile {
  path: string; // relative to the repository root
  text: string;
}

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'"`]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

export function violations(files: SourceFile[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    const top = f.path.split('/')[0]!;
    for (const m of f.text.matchAll(SPECIFIER)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) {
        const target = relative(REPO_ROOT, resolve(REPO_ROOT, dirname(f.path), spec)).split('/')[0]!;
        if (FORBIDDEN[top]?.includes(target)) out.push(`${f.path} imports ${spec} (${top}/ must not import ${target}/)`);
      } else {
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        const door = PACKAGE_DOORS[pkg];
        if (door && !door(f.path)) out.push(`${f.path} imports '${pkg}', which only its one module may`);
      }
    }
  }
  return out;
}

function sources(dir: string): SourceFile[] {
  const out: SourceFile[] = [];
  for (const name of readdirSync(join(REPO_ROOT, dir))) {
    const rel = join(dir, name);
    if (statSync(join(REPO_ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push({ path: rel, text: readFileSync(join(REPO_ROOT, rel), 'utf8') });
  }
  return out;
}

test('the checker reports each kind of violation (so the next test cannot pass vacuously)', () => {
  const found = violations([
    { path: 'coordinator/x.ts', text: "import { a } from '../agent/trainer/job.js';" },
    { path: 'agent/y.ts', text: "const m = await import('../coordinator/round/runner.js');" },
    { path: 'common/z.ts', text: "export { b } from '../native/ring.js';\nimport mqtt from 'mqtt';" },
    { path: 'native/w.ts', text: "import type { C } from '../simulate/experiment.js';" },
    { path: 'agent/ok.ts', text: "import { d } from '../common/errors.js';\nimport { e } from './local.js';" },
  ]);
  assert.equal(found.length, 5, found.join('\n'));
  assert.match(found.join('\n'), /coordinator\/x\.ts imports \.\.\/agent/);
  assert.match(found.join('\n'), /agent\/y\.ts imports \.\.\/coordinator/);
  assert.match(found.join('\n'), /common\/z\.ts imports \.\.\/native/);
  assert.match(found.join('\n'), /common\/z\.ts imports 'mqtt'/);
  assert.match(found.join('\n'), /native\/w\.ts imports \.\.\/simulate/);
});

test('the source tree imports only along the data flow', () => {
  const files = ['agent', 'coordinator', 'common', 'native'].flatMap(sources);
  assert.ok(files.length > 100, `${files.length} files scanned`);
  assert.equal(violations(files), []);
});

test.run();
