#!/usr/bin/env node
// npm run sbom [-- FILE]: the runtime dependencies' CycloneDX SBOM (npm sbom, from the lock file,
// so it works offline), checked before it is written: well-formed CycloneDX 1.x JSON, every
// component with a name, a version and a purl, and every runtime dependency of package.json in
// it at exactly the version the lock pins. Exit 0 and the file; 65 with what is wrong.
// `npm audit` needs the registry's advisory service, which CI machines cannot reach: run it
// where it can (`npm audit --omit dev`) before a release.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = process.argv[2] ?? 'sbom.cdx.json';
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'));

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const text = execFileSync(npm, ['sbom', '--sbom-format', 'cyclonedx', '--omit', 'dev', '--package-lock-only'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });

const problems = [];
let bom;
try {
  bom = JSON.parse(text);
} catch (err) {
  problems.push(`npm sbom printed no JSON: ${err.message}`);
}
if (bom) {
  if (bom.bomFormat !== 'CycloneDX') problems.push(`bomFormat is ${JSON.stringify(bom.bomFormat)}, not "CycloneDX"`);
  if (!/^1\.\d+$/.test(String(bom.specVersion))) problems.push(`specVersion ${JSON.stringify(bom.specVersion)} is not 1.x`);
  if (!Array.isArray(bom.components) || bom.components.length === 0) problems.push('no components');
  const byName = new Map();
  for (const c of bom.components ?? []) {
    if (!c.name || !c.version || !/^pkg:npm\//.test(c.purl ?? '')) problems.push(`component ${JSON.stringify(c.name)} lacks a name, version or npm purl`);
    const full = c.group ? `${c.group}/${c.name}` : c.name;
    byName.set(full, c.version);
  }
  for (const [name, spec] of Object.entries(pkg.dependencies ?? {})) {
    const pinned = lock.packages?.[`node_modules/${name}`]?.version;
    if (spec !== pinned) problems.push(`package.json pins ${name} to '${spec}', the lock to ${pinned}: pin exact versions`);
    if (byName.get(name) !== pinned) problems.push(`${name} ${pinned} is not in the SBOM (found ${byName.get(name) ?? 'nothing'})`);
  }
}
if (problems.length > 0) {
  process.stderr.write(`sbom: ${problems.join('\n      ')}\n`);
  process.exit(65);
}
writeFileSync(out, JSON.stringify(bom, null, 2) + '\n');
process.stdout.write(`sbom: ${bom.components.length} components (CycloneDX ${bom.specVersion}) written to ${out}\n`);
