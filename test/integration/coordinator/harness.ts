import { runBounded, type RunResult } from '../../helpers/run-bounded.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DIST } from '../../helpers/paths.js';
import { sleep } from '../../helpers/wait.js';

/**
 * The real `node dist/coordinator/cli.js` in a child process for the service tests: its JSON log
 * lines collected, bounded waits, and a kill for tests that fail half-way.
 */
export const COORDINATOR_CLI = join(DIST, 'coordinator', 'cli.js');

export type LogLine = Record<string, unknown> & { msg?: string; component?: string };

/** The environment without this host's icosfl and systemd variables. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && !['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'STATE_DIRECTORY', 'RUNTIME_DIRECTORY', 'LOG_FORMAT', 'JOURNAL_STREAM'].includes(k)));
  return { ...base, ...env };
}

export class ServiceProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;

  private constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ msg: 'non-json', line });
      }
    });
    proc.stderr!.on('data', (d) => (this.stderr += String(d)));
    this.exited = new Promise((resolve) => {
      let at = 0;
      proc.once('exit', () => (at = Date.now()));
      proc.once('close', (code, signal) => resolve({ code, signal, at: at || Date.now() }));
    });
  }

  static spawn(args: string[], env: Record<string, string> = {}): ServiceProcess {
    return new ServiceProcess(spawn(process.execPath, [COORDINATOR_CLI, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  async waitForLog(msg: string, timeoutMs = 15_000): Promise<LogLine> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const hit = this.logs.find((l) => l.msg === msg);
      if (hit) return hit;
      if (this.proc.exitCode !== null) break;
      await sleep(20);
    }
    throw new Error(`no '${msg}' log within ${timeoutMs} ms; stderr: ${this.stderr}; logs: ${this.logs.map((l) => l.msg).join(' | ')}`);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Runs one CLI command to completion (bounded); `as` runs it as another user (test/helpers/as-nobody.ts). */
export function runCoordinatorCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000, as: { uid?: number; gid?: number } = {}): Promise<RunResult> {
  return runBounded(process.execPath, [COORDINATOR_CLI, ...args], timeoutMs, { env: cleanEnv(env), ...as });
}

/** A coordinator config for a test: its own state dir, the keys given, then `extra` TOML (sections may repeat keys only once). */
export function writeCoordinatorConfig(dir: string, name: string, sections: Record<string, Record<string, unknown>>): string {
  const path = join(dir, name);
  const text = Object.entries(sections)
    .map(([section, values]) => `[${section}]\n${Object.entries(values).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}\n`)
    .join('\n');
  writeFileSync(path, text);
  return path;
}
