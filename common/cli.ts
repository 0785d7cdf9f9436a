import { EXIT_CODES, exitCode } from './exit-codes.js';
import { IcosflError, exitNameOf } from './errors.js';
import { flagHelp, parseFlags, wantsHelp, type FlagDefs, type ParsedArgs } from './cli-flags.js';
import { formatVersionReport, versionReport, type AddonInfo } from './version.js';

/**
 * A subcommand of `icosfl-agent`, `icosfl-coordinator` or `icosfl-simulate`. Each lives in its own
 * file under `<side>/commands/` and is imported only when invoked, so `status` never loads tfjs or
 * SEAL. The runner parses the command line against `flags` (common/cli-flags.ts) before `run`, and
 * prints `--help` from the same definitions. `run` returns the process exit code (common/exit-codes.ts).
 */
export interface Command<D extends FlagDefs = FlagDefs> {
  summary: string;
  /** Positional arguments as the usage line shows them ('SRC', 'FILE'); absent: none are accepted. */
  operands?: string;
  flags: D;
  /** Printed after the options by --help: what the flags alone do not say. */
  notes?: () => string;
  run(args: ParsedArgs<D>): Promise<number>;
}

/** A command with subcommands (`keys init`, `keys check`): each subcommand is a Command. */
export interface CommandGroup {
  summary: string;
  /** What the group's name alone (or followed by options) runs, as `agents --json` does. */
  default?: Command;
  subcommands: Record<string, Command>;
}

/** Typed values in `run` from the flag definitions' literal types. */
export function defineCommand<const D extends FlagDefs>(command: Command<D>): Command<D> {
  return command;
}

export type CommandTable = Record<string, () => Promise<{ default: Command | CommandGroup }>>;

export interface CliOptions {
  /** The native addon's versions for `version` (native/load-addon.ts addonInfo; common/ may not import native/). */
  addon: () => Promise<AddonInfo>;
}

/** Each domain error code declares its exit status (common/errors.ts); misuse is USAGE; anything else FAILURE. */
function exitFor(err: unknown): number {
  if (err instanceof IcosflError) return exitCode(exitNameOf(err.code));
  if (err instanceof TypeError || err instanceof RangeError) return exitCode('USAGE');
  return exitCode('FAILURE');
}

const isGroup = (c: Command | CommandGroup): c is CommandGroup => 'subcommands' in c;

function overview(program: string, commands: Record<string, Command | CommandGroup>): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  const codes = Object.values(EXIT_CODES).map((e) => `  ${String(e.code).padStart(3)}  ${e.help}`);
  return (
    `usage: ${program} <command> [options]\n       ${program} help <command>   (or <command> --help): its options, defaults and environment variables\n       ${program} --version\n\n` +
    `commands:\n${lines.join('\n')}\n\nexit codes:\n${codes.join('\n')}\n`
  );
}

function usageLine(invocation: string, c: Command): string {
  return `${invocation} [options]${c.operands ? ` ${c.operands}` : ''}`;
}

/** `<program> <command> --help`: the usage, the summary, every option with its default and variable. */
export function commandHelp(invocation: string, c: Command | CommandGroup): string {
  if (isGroup(c)) {
    const names = Object.keys(c.subcommands);
    const width = Math.max(...names.map((n) => n.length));
    const list = names.map((n) => `  ${n.padEnd(width)}  ${c.subcommands[n]!.summary}`);
    const each = names.map((n) => `${usageLine(`${invocation} ${n}`, c.subcommands[n]!)}\n${flagHelp(c.subcommands[n]!.flags).join('\n')}`);
    const alone = c.default ? `${usageLine(invocation, c.default)}\n  ${c.default.summary}\n${flagHelp(c.default.flags).join('\n')}\n\n` : '';
    return `usage: ${invocation} <subcommand> [options]${c.default ? `\n       ${invocation} [options]` : ''}\n\n${c.summary}\n\nsubcommands:\n${list.join('\n')}\n\n${alone}${each.join('\n\n')}\n`;
  }
  const notes = c.notes ? `\n${c.notes().replace(/\n*$/, '\n')}` : '';
  return `usage: ${usageLine(invocation, c)}\n\n${c.summary}\n\noptions:\n${flagHelp(c.flags).join('\n')}\n${notes}`;
}

/** The built-in commands every CLI answers (listed in its help like the others). */
export function builtinCommands(program: string, table: CommandTable, options: CliOptions): Record<string, Command> {
  return {
    help: defineCommand({
      summary: "print the commands, or one command's options with their defaults and environment variables",
      operands: '[COMMAND [SUBCOMMAND]]',
      flags: {},
      async run({ positionals: [name, sub] }) {
        if (!name) {
          process.stdout.write(overview(program, await loadAll(program, table, options)));
          return exitCode('OK');
        }
        const c = await resolve(program, table, options, name);
        const chosen = sub !== undefined && isGroup(c) ? c.subcommands[sub] : c;
        if (!chosen) throw new IcosflError('USAGE_INVALID', `'${program} ${name}' has no subcommand '${sub}'; '${program} ${name} --help' lists them`);
        process.stdout.write(commandHelp(`${program} ${name}${chosen === c ? '' : ` ${sub}`}`, chosen));
        return exitCode('OK');
      },
    }),
    version: defineCommand({
      summary: 'print the package version, node and Node-API versions, and the ring, protocol and CKKS wire format versions',
      flags: { json: { type: 'boolean', description: 'print one JSON object instead of lines' } },
      async run({ values }) {
        const report = await versionReport(program, options.addon);
        process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatVersionReport(report));
        return exitCode('OK');
      },
    }),
  };
}

async function resolve(program: string, table: CommandTable, options: CliOptions, name: string): Promise<Command | CommandGroup> {
  const builtin = builtinCommands(program, table, options)[name];
  if (builtin) return builtin;
  const load = table[name];
  if (!load) throw new IcosflError('USAGE_INVALID', `unknown command '${name}'; try '${program} help'`);
  return (await load()).default;
}

async function loadAll(program: string, table: CommandTable, options: CliOptions): Promise<Record<string, Command | CommandGroup>> {
  const loaded = await Promise.all(Object.entries(table).map(async ([n, load]) => [n, (await load()).default] as const));
  return { ...Object.fromEntries(loaded), ...builtinCommands(program, table, options) };
}

/** Runs one command line: the group's subcommand if any, help if asked, else the parsed flags. */
async function dispatch(program: string, c: Command | CommandGroup, invocation: string, argv: string[]): Promise<number> {
  if (isGroup(c)) {
    const [sub, ...rest] = argv;
    if (c.default && (sub === undefined || (sub.startsWith('-') && sub !== '--help' && sub !== '-h'))) return dispatch(program, c.default, invocation, argv);
    if (sub === undefined || sub === '--help' || sub === '-h') {
      process.stdout.write(commandHelp(invocation, c));
      return exitCode(sub === undefined ? 'USAGE' : 'OK');
    }
    const leaf = c.subcommands[sub];
    if (!leaf) throw new IcosflError('USAGE_INVALID', `unknown subcommand '${sub}' of '${invocation}' (${Object.keys(c.subcommands).join(', ')}); '${invocation} --help' lists them`);
    return dispatch(program, leaf, `${invocation} ${sub}`, rest);
  }
  if (wantsHelp(argv)) {
    process.stdout.write(commandHelp(invocation, c));
    return exitCode('OK');
  }
  return c.run(parseFlags(c.flags, argv, invocation, c.operands !== undefined));
}

export async function runCli(program: string, table: CommandTable, options: CliOptions, argv = process.argv.slice(2)): Promise<void> {
  const [name, ...rest] = argv;
  const builtin = builtinCommands(program, table, options);
  let code: number;
  try {
    if (!name || name === '--help' || name === '-h') {
      process.stdout.write(overview(program, await loadAll(program, table, options)));
      code = name ? exitCode('OK') : exitCode('USAGE');
    } else if (name === '--version' || name === '-V') {
      code = await dispatch(program, builtin.version!, `${program} version`, rest);
    } else if (!(name in table) && !(name in builtin)) {
      process.stderr.write(`${program}: unknown command '${name}'; try '${program} help'\n`);
      code = exitCode('USAGE');
    } else {
      code = await dispatch(program, await resolve(program, table, options, name), `${program} ${name}`, rest);
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stderr.write(`${program}: ${e.code ? `[${e.code}] ` : ''}${e.message}\n`);
    code = exitFor(err);
  }
  // exitCode rather than exit(): pending stdout writes to a pipe drain before the process ends.
  // Each command closes its own handles (sockets, workers, timers) before it returns.
  process.exitCode = code;
}
