#!/usr/bin/env node
// npm run bench -- NAME [args...]: runs dist/test/bench/NAME.bench.js. Each benchmark prints
// progress on stderr and ends with one JSON line on stdout. With no NAME, lists them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = fileURLToPath(new URL('../dist/test/bench/', import.meta.url));
const available = existsSync(benchDir)
  ? readdirSync(benchDir).filter((f) => f.endsWith('.bench.js')).map((f) => f.replace(/\.bench\.js$/, ''))
  : [];
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${available.join(', ') || 'none built'})`);
  process.exit(name ? 64 : 0);
}
const r = spawnSync(process.execPath, ['--expose-gc', join(benchDir, `${name}.bench.js`), ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
