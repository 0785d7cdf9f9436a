// Writes docs/CONFIG.md, the configuration reference of both programs, from their zod schemas
// (common/config/reference.ts reads them; the descriptions are the schemas' `.describe()` texts).
//   node dist/scripts/config-doc.js [FILE]           rewrite docs/CONFIG.md (or FILE)
//   node dist/scripts/config-doc.js --check [FILE]   exit 1 if it differs from the schemas
// test/unit/config/reference.test.ts runs --check, so a schema change without the docs fails.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_PATH as AGENT_CONFIG } from '../agent/config/load.js';
import { agentConfigReference } from '../agent/config/reference.js';
import { CONFIG_PATH_VARIABLE, DEFAULT_CONFIG_PATH as COORDINATOR_CONFIG, ENV_PREFIX } from '../coordinator/config/load.js';
import { coordinatorConfigReference } from '../coordinator/config/reference.js';
import { referenceMarkdown } from '../common/config/reference.js';

// dist/scripts/config-doc.js → the repository root.
export const CONFIG_DOC = fileURLToPath(new URL('../../docs/CONFIG.md', import.meta.url));

export function configDoc(): string {
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from the zod schemas by `node dist/scripts/config-doc.js`; do not edit by hand:',
    '     change the schema (agent/config/schema.ts, agent/trainer/config.ts, coordinator/config/schema.ts,',
    '     common/protocol/federation-model.ts) and rerun it. A test fails while this file is out of date. -->',
    '',
    'Every key is optional: an absent file, section or key takes the default below. Unknown keys are',
    'errors. Layers, strongest last: defaults < the TOML file < environment variables < flags',
    '(`--set section.key=value`, repeatable). A variable or flag is parsed as the key\'s type; lists are',
    'comma-separated, booleans `true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off`. `check-config` validates',
    'all layers and prints the effective configuration, or names the wrong key and where it came from',
    '(exit 78). `check-config --help` prints this list too.',
    '',
    `## icosfl-agent: \`${AGENT_CONFIG}\``,
    '',
    `Or \`--config PATH\`, or \`$ICOSFL_CONFIG\`. Variables: \`ICOSFL_<SECTION>_<KEY>\`; flags \`--state-dir\`,`,
    '`--runtime-dir` and `--log-level` set the `[agent]` keys of the same names. Example with every key:',
    '[agent/config/agent.example.toml](../agent/config/agent.example.toml) (installed as `/etc/icosfl/agent.example.toml`).',
    '',
    referenceMarkdown(agentConfigReference()),
    `## icosfl-coordinator: \`${COORDINATOR_CONFIG}\``,
    '',
    `Or \`--config FILE\`, or \`$${CONFIG_PATH_VARIABLE}\`. Variables: \`${ENV_PREFIX}<SECTION>_<KEY>\` (a prefix of its own:`,
    "the agent's variables may be set on the same host). Relative paths are resolved against the file's directory.",
    'Example with every key: [coordinator/config/coordinator.example.toml](../coordinator/config/coordinator.example.toml)',
    '(installed as `/etc/icosfl/coordinator.example.toml`).',
    '',
    referenceMarkdown(coordinatorConfigReference()),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const check = args[0] === '--check';
  const file = (check ? args[1] : args[0]) ?? CONFIG_DOC;
  const text = configDoc();
  if (check) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // a missing file is out of date too
    }
    if (current !== text) {
      process.stderr.write(`${file} is out of date with the config schemas; regenerate it with: npm run build && node dist/scripts/config-doc.js\n`);
      process.exitCode = 1;
    } else process.stdout.write(`${file} is up to date\n`);
  } else {
    writeFileSync(file, text);
    process.stdout.write(`wrote ${file}\n`);
  }
}
