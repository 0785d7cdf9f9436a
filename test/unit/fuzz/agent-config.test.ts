import fc from 'fast-check';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgentConfig } from '../../../agent/config/load.js';
import type { ErrorCode } from '../../../common/errors.js';
import { FUZZ_RUNS, FUZZ_SEED, Tally, applyConfigEdits, applyTextEdits, configEditsArb, fuzzOptions, refusedWith, textEditsArb, tomlTextArb } from '../../helpers/fuzz.js';
import { REPO_ROOT } from '../../helpers/paths.js';

// agent/config/load.ts on hostile files: random TOML-shaped text, text mutations of the shipped
// example (lines dropped, duplicated, cut, syntax inserted) and structure-aware edits of its parsed
// form (any key of any section set to a hostile value, removed, or added, written back as TOML).
// Each file loads or is refused with CONFIG_INVALID; a loaded config is the schema's output.
const REFUSED: ReadonlySet<ErrorCode> = new Set(['CONFIG_INVALID']);
const EXAMPLE = readFileSync(join(REPO_ROOT, 'agent/config/agent.example.toml'), 'utf8');
const BASE = parseToml(EXAMPLE) as Record<string, Record<string, unknown>>;
const SECTIONS = Object.fromEntries(Object.entries(BASE).map(([s, v]) => [s, Object.keys(v)]));
// tmpfs where there is one: the file is rewritten for every input.
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'icosfl-fuzz-agent-config-'));
const file = join(dir, 'agent.toml');
console.log(`  agent config fuzz: seed ${FUZZ_SEED}, ${FUZZ_RUNS} inputs`);

function load(text: string, tally: Tally): void {
  writeFileSync(file, text);
  const outcome = refusedWith(REFUSED, () => {
    const c = loadAgentConfig({ configPath: file, env: {} });
    assert.ok(c.sampler.interval_ms >= 50 && Array.isArray(c.sampler.metrics));
  });
  tally.add(outcome);
}

test(`random TOML text, mutations of the example, structure-aware edits (${FUZZ_RUNS}): loaded or CONFIG_INVALID`, () => {
  const tally = new Tally();
  const structured = configEditsArb(SECTIONS).map((edits) => {
    try {
      return stringifyToml(applyConfigEdits(BASE, edits));
    } catch {
      return applyTextEdits(EXAMPLE, [{ line: edits.length, op: 'insert', text: '= =' }]); // a value TOML cannot write (NaN keys, …)
    }
  });
  const arb = fc.oneof(tomlTextArb, textEditsArb.map((e) => applyTextEdits(EXAMPLE, e)), { arbitrary: structured, weight: 2 });
  fc.assert(fc.property(arb, (text) => load(text, tally)), fuzzOptions());
  console.log('  agent config:', tally.toJSON());
  assert.ok(tally.get('accepted') > FUZZ_RUNS / 50 && tally.get('CONFIG_INVALID') > FUZZ_RUNS / 4);
  // No edit leaked into Object.prototype (a "__proto__" section or key).
  assert.is(({} as Record<string, unknown>).interval_ms, undefined);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
