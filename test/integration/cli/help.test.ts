import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMANDS as AGENT } from '../../../agent/commands/index.js';
import { builtinCommands, type Command, type CommandGroup, type CommandTable } from '../../../common/cli.js';
import { flagSyntax } from '../../../common/cli-flags.js';
import { EXIT_CODES } from '../../../common/exit-codes.js';
import { COMMANDS as COORDINATOR } from '../../../coordinator/commands/index.js';
import { COMMANDS as SIMULATE } from '../../../simulate/commands/index.js';
import { DIST } from '../../helpers/paths.js';

/**
 * Every command of every CLI, through the real entry points: `--help` (and `help <command>`) exits
 * 0 and shows every flag the parser accepts, and an unknown flag exits 64 naming it. The flag lists
 * come from the same definitions the parser reads, so a flag cannot be added without its help.
 */
const CLIS: [string, string, CommandTable][] = [
  ['icosfl-agent', join(DIST, 'agent', 'cli.js'), AGENT],
  ['icosfl-coordinator', join(DIST, 'coordinator', 'cli.js'), COORDINATOR],
  ['icosfl-simulate', join(DIST, 'simulate', 'cli.js'), SIMULATE],
];

function run(cli: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
    const p = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** fn over items, at most `width` at a time (each is a node process start; the machine has few cores). */
async function pooled<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

/** Each leaf command as [words after the program, its definition]: `keys init` is ['keys', 'init']. */
async function leaves(table: CommandTable, program: string): Promise<[string[], Command][]> {
  const all: Record<string, Command | CommandGroup> = { ...builtinCommands(program, table, { addon: async () => ({ path: '', napiVersion: null, ringFormatVersion: null, error: 'unused' }) }) };
  for (const [name, load] of Object.entries(table)) all[name] = (await load()).default;
  const out: [string[], Command][] = [];
  for (const [name, c] of Object.entries(all)) {
    if ('subcommands' in c) for (const [sub, s] of Object.entries(c.subcommands)) out.push([[name, sub], s]);
    else out.push([[name], c]);
  }
  return out;
}

function assertListsFlags(text: string, c: Command, what: string): void {
  for (const [name, def] of Object.entries(c.flags)) {
    assert.ok(text.includes(flagSyntax(name, def)), `${what}: --help shows ${flagSyntax(name, def)}`);
    assert.ok(text.includes(def.description), `${what}: --help says what --${name} does`);
    if (def.default !== undefined) assert.ok(text.includes(`[default: ${def.default}]`), `${what}: --${name}'s default`);
    if (def.env !== undefined) assert.ok(text.includes(`[env: ${def.env}]`), `${what}: --${name}'s variable`);
  }
  assert.ok(text.includes('-h, --help'), `${what}: lists --help`);
}

for (const [program, cli, table] of CLIS) {
  test(`${program}: every command's --help and 'help <command>' exit 0 and list every flag`, async () => {
    const list = await leaves(table, program);
    assert.ok(list.length >= 4, `${program} has commands`);
    const answers = await pooled(list, 3, async ([words]) => Promise.all([run(cli, [...words, '--help']), run(cli, ['help', ...words])]));
    for (const [i, [words, c]] of list.entries()) {
      const what = `${program} ${words.join(' ')}`;
      const [r, viaHelp] = answers[i]!;
      assert.is(r.code, 0, `${what} --help: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`usage: ${what} [options]`), `${what}: usage line, got ${r.stdout.slice(0, 80)}`);
      assert.ok(r.stdout.includes(c.summary), `${what}: summary`);
      assertListsFlags(r.stdout, c, what);
      assert.is(viaHelp.code, 0, viaHelp.stderr);
      assert.is(viaHelp.stdout, r.stdout, `'${program} help ${words.join(' ')}' prints the same`);
    }
  });

  test(`${program}: an unknown flag exits 64 naming the flag and pointing at --help`, async () => {
    const list = await leaves(table, program);
    const answers = await pooled(list, 3, ([words]) => run(cli, [...words, '--no-such-flag']));
    for (const [i, [words]] of list.entries()) {
      const what = `${program} ${words.join(' ')}`;
      const r = answers[i]!;
      assert.is(r.code, EXIT_CODES.USAGE.code, `${what}: ${r.stderr}`);
      assert.match(r.stderr, `unknown option '--no-such-flag' for '${what}'; '${what} --help' lists its options`);
      assert.is(r.stdout, '', `${what} printed nothing on stdout`);
    }
  });

  test(`${program}: help lists every command; no command is a usage error; an unknown command exits 64`, async () => {
    const help = await run(cli, ['help']);
    assert.is(help.code, 0, help.stderr);
    for (const name of [...Object.keys(table), 'help', 'version']) assert.match(help.stdout, new RegExp(`^  ${name} `, 'm'));
    for (const e of Object.values(EXIT_CODES)) assert.ok(help.stdout.includes(e.help), `exit code ${e.code} listed`);
    assert.is((await run(cli, ['--help'])).stdout, help.stdout);
    const bare = await run(cli, []);
    assert.is(bare.code, 64);
    assert.is(bare.stdout, help.stdout);
    const unknown = await run(cli, ['no-such-command']);
    assert.is(unknown.code, 64);
    assert.match(unknown.stderr, `unknown command 'no-such-command'; try '${program} help'`);
    const unknownHelp = await run(cli, ['help', 'no-such-command']);
    assert.is(unknownHelp.code, 64);
    assert.match(unknownHelp.stderr, `unknown command 'no-such-command'`);
  });
}

test('a group command: its --help lists each subcommand with its flags; an unknown or missing subcommand is a usage error', async () => {
  const cli = join(DIST, 'coordinator', 'cli.js');
  const keys = (await COORDINATOR.keys!()).default as CommandGroup;
  const r = await run(cli, ['keys', '--help']);
  assert.is(r.code, 0, r.stderr);
  for (const [sub, c] of Object.entries(keys.subcommands)) {
    assert.match(r.stdout, `icosfl-coordinator keys ${sub} [options]`);
    assertListsFlags(r.stdout, c, `keys ${sub}`);
  }
  const bare = await run(cli, ['keys']);
  assert.is(bare.code, 64);
  assert.is(bare.stdout, r.stdout);
  const wrong = await run(cli, ['keys', 'revoke']);
  assert.is(wrong.code, 64);
  assert.match(wrong.stderr, "[USAGE_INVALID] unknown subcommand 'revoke' of 'icosfl-coordinator keys' (init, rotate, check)");
  const wrongHelp = await run(cli, ['help', 'keys', 'revoke']);
  assert.is(wrongHelp.code, 64);
  assert.match(wrongHelp.stderr, "'icosfl-coordinator keys' has no subcommand 'revoke'");
});

test('flag misuse names the flag: a missing value, a value on a switch, a required flag, a stray argument', async () => {
  const agent = join(DIST, 'agent', 'cli.js');
  const missing = await run(agent, ['status', '--socket']);
  assert.is(missing.code, 64);
  assert.match(missing.stderr, "[USAGE_INVALID] option '--socket' needs a value: --socket PATH; 'icosfl-agent status --help' lists its options");
  const switchValue = await run(agent, ['status', '--json=yes']);
  assert.is(switchValue.code, 64);
  assert.match(switchValue.stderr, "option '--json' takes no value");
  const stray = await run(agent, ['status', 'extra']);
  assert.is(stray.code, 64);
  assert.match(stray.stderr, "unexpected argument 'extra': 'icosfl-agent status' takes no arguments");
  const required = await run(join(DIST, 'simulate', 'cli.js'), ['convert', 'src.tar.gz', '--from', 'gcd']);
  assert.is(required.code, 64);
  assert.match(required.stderr, "--out DIR is required: directory to write one CSV per machine to; 'icosfl-simulate convert --help' lists its options");
  // After `--` nothing is an option: a literal '--help' there is an operand, not a help request.
  const literal = await run(join(DIST, 'coordinator', 'cli.js'), ['keys', 'check', '--role', 'agent', '--', '--help']);
  assert.is(literal.code, EXIT_CODES.NO_PERMISSION.code, literal.stderr);
});

test("check-config --help prints every configuration key of its program", async () => {
  const { agentConfigReference } = await import('../../../agent/config/reference.js');
  const { coordinatorConfigReference } = await import('../../../coordinator/config/reference.js');
  for (const [cli, reference] of [[join(DIST, 'agent', 'cli.js'), agentConfigReference()], [join(DIST, 'coordinator', 'cli.js'), coordinatorConfigReference()]] as const) {
    const r = await run(cli, ['check-config', '--help']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, 'docs/CONFIG.md');
    for (const s of reference) {
      assert.match(r.stdout, `[${s.section}]  ${s.description}`);
      for (const k of s.keys) {
        assert.match(r.stdout, `  ${k.key} (${k.type}`);
        assert.match(r.stdout, `env ${k.env})\n      ${k.description}\n`);
      }
    }
  }
});

test.run();
