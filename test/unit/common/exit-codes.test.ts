import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXIT_CODES } from '../../../common/exit-codes.js';
import { ERROR_CODES, IcosflError } from '../../../common/errors.js';
import { REPO_ROOT } from '../../helpers/paths.js';

test('every exit code has a distinct number and a help string', () => {
  const seen = new Set<number>();
  for (const [name, entry] of Object.entries(EXIT_CODES)) {
    assert.ok(entry.help.length > 5, `${name} has help`);
    assert.not.ok(seen.has(entry.code), `${name} code ${entry.code} is unique`);
    seen.add(entry.code);
  }
});

test('every error code has a description and IcosflError keeps code and cause', () => {
  for (const [code, entry] of Object.entries(ERROR_CODES)) {
    assert.ok(entry.help.length > 5, code);
    assert.ok(entry.exit in EXIT_CODES, `${code} declares exit ${entry.exit}`);
  }
  const cause = new Error('inner');
  const e = new IcosflError('RING_IO', 'bad', { cause });
  assert.is(e.code, 'RING_IO');
  assert.is(e.cause, cause);
  assert.instance(e, Error);
});

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/**
 * Source text with what cannot assert anything removed: comments, and the titles of tests
 * (`test('… is RING_IO', …)` names a code without checking it). What is left that names a code
 * does so in a string, template or regex that a check compares against.
 */
function checkingText(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|\s)\/\/.*$/gm, '$1')
    .replace(/\b(test|suite|describe|it)\(\s*(['"`])(?:\\.|(?!\2)[\s\S])*?\2/g, '$1(');
}

/** The codes a file checks for: each in quotes, backquotes, a regex or a `[CODE]` of a CLI's stderr. */
function codesChecked(text: string): Set<string> {
  const found = new Set<string>();
  for (const code of Object.keys(ERROR_CODES)) if (new RegExp(`['"\`/\\[]${code}(\\\\?\\]|['"\`/]|\\b)`).test(text)) found.add(code);
  return found;
}

test('the scanner ignores codes named only in comments and test titles', () => {
  const sample = "// RING_IO here\n/* CONFIG_INVALID */\ntest('throws RING_LOCKED', () => {});\ntest(`DATA_INVALID`, () => { assert.ok(isIcosflError(e, 'STATE_CORRUPT')); assert.match(out, /\\[DAEMON_NOT_RUNNING\\]/); });";
  assert.equal([...codesChecked(checkingText(sample))].sort(), ['DAEMON_NOT_RUNNING', 'STATE_CORRUPT']);
});

test('every error code is thrown by the product and checked by at least one test', () => {
  const self = relative(REPO_ROOT, join(REPO_ROOT, 'test', 'unit', 'common', 'exit-codes.test.ts'));
  const tests = tsFiles(join(REPO_ROOT, 'test')).filter((f) => relative(REPO_ROOT, f) !== self);
  const checked = new Set<string>();
  for (const f of tests) for (const c of codesChecked(checkingText(readFileSync(f, 'utf8')))) checked.add(c);
  const product = ['agent', 'common', 'coordinator', 'native', 'simulate']
    .flatMap((d) => tsFiles(join(REPO_ROOT, d)))
    .filter((f) => !f.endsWith(join('common', 'errors.ts')))
    .map((f) => checkingText(readFileSync(f, 'utf8')))
    .join('\n');
  // The C++ ring names its codes as strings (native/src/ring.cpp RingError::code).
  const cpp = readFileSync(join(REPO_ROOT, 'native', 'src', 'ring.cpp'), 'utf8');
  const unchecked = Object.keys(ERROR_CODES).filter((c) => !checked.has(c));
  const unthrown = Object.keys(ERROR_CODES).filter((c) => !new RegExp(`['"]${c}['"]`).test(product + cpp));
  assert.equal(unchecked, [], `codes no test checks: ${unchecked.join(', ')}`);
  assert.equal(unthrown, [], `codes nothing produces (remove them or throw them): ${unthrown.join(', ')}`);
});

test("README's exit-code table lists every exit and each error code under the exit it declares", () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const m of readme.matchAll(/^\| (\d+) \| ([A-Z_]+) \| [^|]+ \|([^\n]*)\|$/gm)) rows.set(m[2]!, `${m[1]}|${m[3]}`);
  for (const [name, entry] of Object.entries(EXIT_CODES)) {
    const row = rows.get(name);
    assert.ok(row, `README has a row for exit ${name}`);
    assert.is(row!.split('|')[0], String(entry.code), `${name} is ${entry.code}`);
  }
  for (const [code, entry] of Object.entries(ERROR_CODES)) assert.ok(rows.get(entry.exit)?.includes(`\`${code}\``), `README lists ${code} under ${entry.exit}`);
});

test.run();
