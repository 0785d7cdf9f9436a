import { readFileSync } from 'node:fs';
import { EXIT_CODES, exitCode } from './exit-codes.js';
import { IcosflError, exitNameOf } from './errors.js';

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

/** Each domain error code declares its exit status (common/errors.ts); misuse is USAGE; anything else FAILURE. */
function exitFor(err: unknown): number {
  if (err instanceof IcosflError) return exitCode(exitNameOf(err.code));
  if (err instanceof TypeError || err instanceof RangeError) return exitCode('USAGE');
  return exitCode('FAILURE');
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
    const e = err as Error & { code?: string };
    process.stderr.write(`${program}: ${e.code ? `[${e.code}] ` : ''}${e.message}\n`);
    code = exitFor(err);
  }
  // exitCode rather than exit(): pending stdout writes to a pipe drain before the process ends.
  // Each command closes its own handles (sockets, workers, timers) before it returns.
  process.exitCode = code;
}
