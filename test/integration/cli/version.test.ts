import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WIRE_VERSION } from '../../../common/crypto/wire.js';
import { PROTOCOL_VERSION } from '../../../common/protocol/messages.js';
import type { VersionReport } from '../../../common/version.js';
import { addonPath, loadAddon } from '../../../native/load-addon.js';
import { DIST, REPO_ROOT } from '../../helpers/paths.js';

/** `version`, `--version` and `version --json` on the three CLIs, against the constants and the built addon. */
const PKG = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; binary: { napi_versions: number[] } };
const CLIS = ['agent', 'coordinator', 'simulate'];

function run(side: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
    const p = spawn(process.execPath, [join(DIST, side, 'cli.js'), ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('version and --version: one line per version, the same on every CLI but for the name', async () => {
  const addon = loadAddon();
  // The addon was built for the Node-API version package.json configures cmake-js with.
  assert.is(addon.napiVersion, PKG.binary.napi_versions[0]);
  for (const side of CLIS) {
    const r = await run(side, ['--version']);
    assert.is(r.code, 0, r.stderr);
    const node = process.versions.node;
    assert.equal(r.stdout.split('\n'), [
      `icosfl-${side} ${PKG.version} (protocol v${PROTOCOL_VERSION}, node ${node})`,
      `package:             icosfl ${PKG.version}`,
      `node:                ${node}, Node-API ${process.versions.napi}`,
      `native addon:        built for Node-API ${addon.napiVersion} (${addonPath()})`,
      `ring file format:    ${addon.formatVersion}`,
      `federation protocol: ${PROTOCOL_VERSION}`,
      `CKKS wire format:    ${WIRE_VERSION}`,
      '',
    ]);
    assert.is((await run(side, ['version'])).stdout, r.stdout);
  }
});

test('version --json: the same facts as one object', async () => {
  const r = await run('coordinator', ['version', '--json']);
  assert.is(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout) as VersionReport;
  assert.equal(v, {
    program: 'icosfl-coordinator',
    version: PKG.version,
    node: process.versions.node,
    napi: { node: Number(process.versions.napi), addon: PKG.binary.napi_versions[0]! },
    addon: { path: addonPath(), loaded: true, error: null },
    ring_format: loadAddon().formatVersion,
    protocol: PROTOCOL_VERSION,
    ckks_wire: WIRE_VERSION,
  });
  assert.equal(JSON.parse((await run('agent', ['--version', '--json'])).stdout), { ...v, program: 'icosfl-agent' });
});

test('without a loadable addon: exit 0, the reason shown, the ring format unknown', async () => {
  const missing = join(REPO_ROOT, 'no-such-addon.node');
  const r = await run('agent', ['version'], { ICOSFL_NATIVE_ADDON: missing });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `native addon:        not loaded: no such file (${missing})\n`);
  assert.match(r.stdout, 'ring file format:    unknown (needs the native addon)\n');
  assert.match(r.stdout, `federation protocol: ${PROTOCOL_VERSION}\n`);
  const json = JSON.parse((await run('agent', ['version', '--json'], { ICOSFL_NATIVE_ADDON: missing })).stdout) as VersionReport;
  assert.equal([json.addon.loaded, json.addon.error, json.ring_format, json.napi.addon], [false, 'no such file', null, null]);
});

test('version takes no arguments', async () => {
  const r = await run('simulate', ['version', 'now']);
  assert.is(r.code, 64);
  assert.match(r.stderr, "unexpected argument 'now': 'icosfl-simulate version' takes no arguments");
});

test.run();
