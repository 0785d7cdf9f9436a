import { EXIT_CODES, exitCode } from './exit-codes.js';
import { IcosflError, exitNameOf } from './errors.js';
import { flagHelp, parseFlags, wantsHelp, type FlagDefs, type ParsedArgs } from './cli-flags.js';
import { formatVersionReport, versionReport, type AddonInfo } from './version.js';
import { fromSystemError, isSystemError } from './system-errors.js';

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

/** What a failure tells the user: one line (never a stack, never raw Node or zod text) and the exit status. */
interface Failure {
  line: string;
  exit: number;
  /** Printed only with LOG_LEVEL=debug or trace: the stack and its causes, for a bug report. */
  stack?: string;
}

const DEBUG_HINT = 'run with LOG_LEVEL=debug for the stack';

/** V8's own TypeError/RangeError wording: a bug in icosfl, not a bad flag (ours name the flag). */
const ENGINE_MESSAGE = /^Cannot (read|set) propert|is not a function|is not iterable|is not a constructor|is not defined$|Invalid array length|Maximum call stack|Cannot convert|Cannot access '/;

/** node:util parseArgs failures, reworded to name the flag and where help is. */
function parseArgsLine(err: Error & { code?: string }, program: string, command: string | undefined): string | undefined {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
  const help = `see '${program}${command ? ` ${command}` : ''} --help'`;
  const where = command ? ` for '${program} ${command}'` : '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag '${quoted}'${where}; ${help}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = quoted.split(' ')[0]!.replace(/^-\w, /, '');
      return /does not take/.test(err.message) ? `flag ${flag} takes no value; ${help}` : `flag ${flag} needs a value (${quoted.replace(/^-\w, /, '')}); ${help}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument '${quoted}'${where}: it takes flags only; ${help}`;
    default:
      return undefined;
  }
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function stackOf(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(e instanceof Error ? (e.stack ?? e.message) : String(e));
  }
  return parts.join('\ncaused by: ');
}

/**
 * Each domain error code declares its exit status (common/errors.ts); bad flags are USAGE; a
 * system error or a validation error nobody mapped gets the same words as a mapped one; anything
 * else is a bug (SOFTWARE) told in one line.
 */
export async function describeFailure(err: unknown, program: string, command?: string): Promise<Failure> {
  const stack = stackOf(err);
  if (err instanceof IcosflError) return { line: `[${err.code}] ${err.message}`, exit: exitCode(exitNameOf(err.code)), stack };
  const e = (err instanceof Error ? err : new Error(typeof err === 'object' && err !== null ? JSON.stringify(err) : String(err))) as Error & { code?: string };
  const usage = parseArgsLine(e, program, command);
  if (usage) return { line: usage, exit: exitCode('USAGE'), stack };
  if (isSystemError(e)) return describeFailure(fromSystemError(e), program, command);
  if (e.name === 'ZodError' && Array.isArray((e as { issues?: unknown }).issues)) {
    const { describeIssue } = await import('./config/problems.js');
    const issues = (e as unknown as { issues: Parameters<typeof describeIssue>[0][] }).issues;
    const words = issues.slice(0, 3).map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${describeIssue(i)}`);
    return { line: `invalid input: ${words.join('; ')}${issues.length > 3 ? ` (and ${issues.length - 3} more)` : ''}; ${DEBUG_HINT}`, exit: exitCode('FAILURE'), stack };
  }
  if (e instanceof SyntaxError) return { line: `malformed JSON or text: ${firstLine(e.message)}; ${DEBUG_HINT}`, exit: exitCode('FAILURE'), stack };
  if ((e instanceof TypeError || e instanceof RangeError) && !ENGINE_MESSAGE.test(e.message)) return { line: firstLine(e.message), exit: exitCode('USAGE'), stack };
  return { line: `internal error: ${firstLine(e.message) || e.name}; this is a bug in icosfl, ${DEBUG_HINT}`, exit: exitCode('SOFTWARE'), stack };
}

function showStack(): boolean {
  return process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace';
}

async function report(err: unknown, program: string, command: string | undefined): Promise<number> {
  let failure: Failure;
  try {
    failure = await describeFailure(err, program, command);
  } catch {
    failure = { line: `internal error; ${DEBUG_HINT}`, exit: exitCode('SOFTWARE'), stack: stackOf(err) };
  }
  process.stderr.write(`${program}: ${failure.line}\n`);
  if (showStack() && failure.stack) process.stderr.write(`${failure.stack}\n`);
  return failure.exit;
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
  // A failure outside the command's own promise (a timer, an event handler) gets the same one line.
  const fatal = (err: unknown) => {
    void report(err, program, name).then((exit) => process.exit(exit));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
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
    code = await report(err, program, name);
  }
  // exitCode rather than exit(): pending stdout writes to a pipe drain before the process ends.
  // Each command closes its own handles (sockets, workers, timers) before it returns.
  process.exitCode = code;
}
