#!/usr/bin/env node
// Writes the Mosquitto ACL file from the federation's ACL rules (common/protocol/acl.ts), so the
// broker grants exactly what the embedded broker grants. Needs a build (npx tsc -p tsconfig.json).
//   node scripts/gen-mosquitto-acl.mjs [--federation ID] [--coordinator CN] [--out FILE]
// Default: every federation ('+'), CN icosfl-coordinator, to stdout; deploy/mosquitto/acl is this
// output with the defaults (test/unit/protocol/acl.test.ts checks it is up to date).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { mosquittoAcl } = await import(join(root, 'dist', 'common', 'protocol', 'acl.js'));
const args = process.argv.slice(2);
const opts = {};
let out;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = args[i + 1];
  if (a === '--federation' && value) (opts.federation = value), i++;
  else if (a === '--coordinator' && value) (opts.coordinator = value), i++;
  else if (a === '--out' && value) (out = value), i++;
  else {
    process.stderr.write(`gen-mosquitto-acl: unknown or incomplete argument '${a}'\nusage: node scripts/gen-mosquitto-acl.mjs [--federation ID] [--coordinator CN] [--out FILE]\n`);
    process.exit(64);
  }
}
let text;
try {
  text = mosquittoAcl(opts);
} catch (err) {
  process.stderr.write(`gen-mosquitto-acl: ${err.message}\n`);
  process.exit(64);
}
if (out) writeFileSync(out, text);
else process.stdout.write(text);
