#!/usr/bin/env node
// Prints, one per line, the node_modules folders (relative to ROOT) that the installed package
// needs at run time: the closure of package.json `dependencies`, resolved the way Node
// resolves them (nearest node_modules first, then upwards), minus packages used only to build
// the native addon. Used by scripts/install.sh, which must work where npm is absent (the
// system-test VM) and must not ship dev or build tooling to small edge disks.
//   node scripts/runtime-modules.mjs [ROOT] [--with-optional]
// --with-optional adds the top-level optionalDependencies (the `webgpu` Dawn binary, ≈130 MB,
// only useful on GPU nodes) where they are installed.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

// Needed by `npm ci` to compile build/Release/icosfl_native.node, never loaded by the daemon.
const BUILD_ONLY = new Set(['cmake-js', 'node-addon-api', 'node-api-headers']);
// TypeScript declarations (mqtt lists @types/ws and @types/readable-stream as dependencies): never loaded at run time.
const typesOnly = (name) => name.startsWith('@types/');

const args = process.argv.slice(2);
const withOptional = args.includes('--with-optional');
const root = resolve(args.find((a) => !a.startsWith('--')) ?? join(dirname(new URL(import.meta.url).pathname), '..'));

const readPackage = (dir) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));

/** The folder Node would load `name` from when required from inside `fromDir`, or null. */
function locate(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dirname(dir) === dir) return null;
  }
}

const top = readPackage(root);
const wanted = Object.keys(top.dependencies ?? {}).filter((n) => !BUILD_ONLY.has(n));
if (withOptional) wanted.push(...Object.keys(top.optionalDependencies ?? {}));

const found = new Set();
const queue = wanted.map((name) => ({ name, from: root, required: !(top.optionalDependencies ?? {})[name] }));
while (queue.length > 0) {
  const { name, from, required } = queue.shift();
  const dir = locate(name, from);
  if (dir === null) {
    // A missing required dependency means a broken checkout: fail loudly rather than ship it.
    if (required) {
      process.stderr.write(`runtime-modules: dependency '${name}' (needed from ${relative(root, from) || '.'}) is not installed; run npm ci\n`);
      process.exit(1);
    }
    continue;
  }
  if (found.has(dir)) continue;
  found.add(dir);
  const pkg = readPackage(dir);
  for (const dep of Object.keys(pkg.dependencies ?? {})) if (!typesOnly(dep)) queue.push({ name: dep, from: dir, required: true });
  for (const dep of Object.keys(pkg.optionalDependencies ?? {})) queue.push({ name: dep, from: dir, required: false });
}
process.stdout.write([...found].map((d) => relative(root, d)).sort().join('\n') + (found.size ? '\n' : ''));
