import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { flagHelp, parseFlags, wantsHelp, type FlagDefs } from '../../../common/cli-flags.js';
import { IcosflError } from '../../../common/errors.js';

/** The one flag parser (common/cli-flags.ts): values typed from the definitions, misuse as USAGE_INVALID naming the flag. */
const FLAGS = {
  out: { type: 'string', value: 'DIR', description: 'where to write', required: true },
  limit: { type: 'string', value: 'N', description: 'at most N', default: '20' },
  set: { type: 'string', multiple: true, value: 'K=V', description: 'a key', env: 'X_<KEY>' },
  json: { type: 'boolean', short: 'j', description: 'as JSON' },
} as const satisfies FlagDefs;

function usage(fn: () => unknown): IcosflError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.is((err as IcosflError).code, 'USAGE_INVALID');
    return err as IcosflError;
  }
  throw new Error('expected a usage error');
}

test('values: defaults filled in, repeatable flags in order, short forms, operands when allowed', () => {
  const { values, positionals } = parseFlags(FLAGS, ['--out', 'd', '--set', 'a=1', '-j', '--set=b=2', 'file'], 'p cmd', true);
  assert.equal(values, { out: 'd', limit: '20', set: ['a=1', 'b=2'], json: true });
  assert.equal(positionals, ['file']);
  assert.is(parseFlags(FLAGS, ['--out', 'd', '--limit', '5'], 'p cmd', false).values.limit, '5');
});

test('misuse: each message names the flag and the invocation, in our words', () => {
  const tail = "; 'p cmd --help' lists its options";
  assert.is(usage(() => parseFlags(FLAGS, ['--out', 'd', '--bogus'], 'p cmd', false)).message, `unknown option '--bogus' for 'p cmd'${tail}`);
  assert.is(usage(() => parseFlags(FLAGS, ['--out', 'd', '-x'], 'p cmd', false)).message, `unknown option '-x' for 'p cmd'${tail}`);
  assert.is(usage(() => parseFlags(FLAGS, ['--out'], 'p cmd', false)).message, `option '--out' needs a value: --out DIR${tail}`);
  assert.is(usage(() => parseFlags(FLAGS, ['--out', 'd', '--json=1'], 'p cmd', false)).message, `option '--json' takes no value${tail}`);
  assert.is(usage(() => parseFlags(FLAGS, ['--limit', '3'], 'p cmd', false)).message, `--out DIR is required: where to write${tail}`);
  assert.is(usage(() => parseFlags(FLAGS, ['--out', 'd', 'stray'], 'p cmd', false)).message, `unexpected argument 'stray': 'p cmd' takes no arguments${tail}`);
  for (const m of ['--bogus', '--out']) assert.not.match(usage(() => parseFlags(FLAGS, [m], 'p cmd', false)).message, /To specify|argument missing|Unknown option/);
});

test('help: one line per flag with its placeholder, default, variable and required mark; --help itself', () => {
  const lines = flagHelp(FLAGS);
  assert.is(lines.length, 5);
  assert.match(lines[0]!, /^ {2}--out DIR +where to write \[required\]$/);
  assert.match(lines[1]!, /--limit N +at most N \[default: 20\]$/);
  assert.match(lines[2]!, /--set K=V … +a key \[env: X_<KEY>\]$/);
  assert.match(lines[3]!, /-j, --json +as JSON$/);
  assert.match(lines[4]!, /-h, --help +print this help and exit$/);
});

test('help is asked for by --help or -h before a `--`, not after it', () => {
  assert.ok(wantsHelp(['--out', 'd', '--help']));
  assert.ok(wantsHelp(['-h']));
  assert.not.ok(wantsHelp(['--', '--help']));
  assert.not.ok(wantsHelp(['--helpful']));
});

test.run();
