import { readFileSync } from 'node:fs';
import { EXIT_CODES, exitCode } from './exit-codes.js';
import { IcosflError, exitNameOf } from './errors.js';
import { fromSystemError, isSystemError } from './system-errors.js';

/**
 * A subcommand of `icosfl-agent` or `icosfl-coordinator`. Each lives in its own file under
 * `<side>/commands/` and is imported only when invoked, so `status` never loads tfjs or SEAL.
 * `run` returns the process exit code (see common/exit-codes.ts).
 */
export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

export type CommandTable = Record<string, () => Promise<{ default: Command }>>;

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
function usageLine(err: Error & { code?: string }, program: string, command: string | undefined): string | undefined {
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
  const usage = usageLine(e, program, command);
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

function helpText(program: string, commands: Record<string, Command>): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  const codes = Object.values(EXIT_CODES).map((e) => `  ${String(e.code).padStart(3)}  ${e.help}`);
  return `usage: ${program} <command> [options]\n       ${program} --version\n\ncommands:\n${lines.join('\n')}\n\nexit codes:\n${codes.join('\n')}\n`;
}

/**
 * `<program> <version> (protocol v1, node 20.x)`. The version is read from package.json at run
 * time, beside the compiled tree (dist/common/cli.js → ../../package.json), so an installed
 * package reports what it is; the protocol module is loaded only here (it pulls in zod).
 */
export async function versionLine(program: string): Promise<string> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  const { PROTOCOL_VERSION } = await import('./protocol/messages.js');
  return `${program} ${String(pkg.version)} (protocol v${PROTOCOL_VERSION}, node ${process.versions.node})`;
}

export async function runCli(program: string, table: CommandTable, argv = process.argv.slice(2)): Promise<void> {
  const [name, ...rest] = argv;
  // A failure outside the command's own promise (a timer, an event handler) gets the same one line.
  const fatal = (err: unknown) => {
    void report(err, program, name).then((exit) => process.exit(exit));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  let code: number;
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      const loaded = Object.fromEntries(await Promise.all(Object.entries(table).map(async ([n, load]) => [n, (await load()).default] as const)));
      process.stdout.write(helpText(program, loaded));
      code = name ? exitCode('OK') : exitCode('USAGE');
    } else if ((name === 'version' || name === '--version' || name === '-V') && !(name in table)) {
      process.stdout.write(`${await versionLine(program)}\n`);
      code = exitCode('OK');
    } else if (!(name in table)) {
      process.stderr.write(`${program}: unknown command '${name}'; try '${program} help'\n`);
      code = exitCode('USAGE');
    } else {
      const command = (await table[name]!()).default;
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(`usage: ${program} ${command.usage}\n\n${command.summary}\n`);
        code = exitCode('OK');
      } else {
        code = await command.run(rest);
      }
    }
  } catch (err) {
    code = await report(err, program, name);
  }
  // exitCode rather than exit(): pending stdout writes to a pipe drain before the process ends.
  // Each command closes its own handles (sockets, workers, timers) before it returns.
  process.exitCode = code;
}
