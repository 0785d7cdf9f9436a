import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Test } from 'uvu';
import { DIST, tempDir } from '../../helpers/paths.js';

/**
 * Helpers for the daemon's lifecycle tests: the real entry point (`node dist/agent/cli.js`) in
 * a child process, its JSON log lines collected, and a real AF_UNIX datagram socket standing in
 * for systemd's $NOTIFY_SOCKET. Node cannot create a datagram unix socket, so a tiny python3
 * process binds one and prints each datagram as a JSON line with its arrival time.
 */
export const CLI = join(DIST, 'agent', 'cli.js');

export interface Datagram {
  /** Arrival, epoch ms. */
  at: number;
  text: string;
}

const LISTENER = `
import json, os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print(json.dumps({"listening": path}), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps({"at": time.time() * 1000, "text": data.decode()}), flush=True)
`;

export class NotifyListener {
  readonly received: Datagram[] = [];
  private constructor(
    readonly path: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(dir: string): Promise<NotifyListener> {
    const path = join(dir, 'notify.sock');
    const proc = spawn('python3', ['-u', '-c', LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const listener = new NotifyListener(path, proc);
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`notify listener exited with ${code}`)));
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as { listening?: string; at?: number; text?: string };
        if (msg.listening) resolve();
        else listener.received.push({ at: msg.at!, text: msg.text! });
      });
    });
    return listener;
  }

  /** Datagrams containing `field` (e.g. 'READY=1') as one of their lines. */
  with(field: string): Datagram[] {
    return this.received.filter((d) => d.text.split('\n').includes(field));
  }

  async waitFor(field: string, timeoutMs = 10_000): Promise<Datagram> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const d = this.with(field)[0];
      if (d) return d;
      await sleep(20);
    }
    throw new Error(`no ${field} datagram within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((d) => d.text))}`);
  }

  stop(): void {
    this.proc.kill('SIGKILL');
  }
}

/**
 * One suite's sd_notify setup: a temp dir, a NotifyListener in it started before the tests, and
 * the daemons the tests spawn (push them onto `daemons`), all killed and removed after.
 */
export function notifyFixture(suite: Test, prefix: string): { dir: string; daemons: DaemonProcess[]; readonly listener: NotifyListener } {
  const { dir, cleanup } = tempDir(prefix);
  const daemons: DaemonProcess[] = [];
  let listener: NotifyListener | undefined;
  suite.before(async () => {
    listener = await NotifyListener.start(dir);
  });
  suite.after(() => {
    for (const d of daemons) d.kill();
    listener?.stop();
    cleanup();
  });
  return {
    dir,
    daemons,
    get listener(): NotifyListener {
      if (!listener) throw new Error('the notify listener starts in the suite\'s before hook');
      return listener;
    },
  };
}

export type LogLine = Record<string, unknown> & { msg?: string; component?: string };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Epoch ms. */
  at: number;
}

export class DaemonProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;
  private constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ msg: 'non-json', line });
      }
    });
    proc.stderr!.on('data', (d) => (this.stderr += String(d)));
    // Resolved on 'close' (stdout drained, so the last log lines are in) with the time of 'exit'.
    this.exited = new Promise((resolve) => {
      let at = 0;
      proc.once('exit', () => (at = Date.now()));
      proc.once('close', (code, signal) => resolve({ code, signal, at: at || Date.now() }));
    });
  }

  /** `node [nodeArgs] dist/agent/cli.js <args>`, with LOG_LEVEL=info unless env says otherwise. */
  static spawn(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): DaemonProcess {
    // LOG_FORMAT and JOURNAL_STREAM left out: the logs are read as JSON lines from a pipe.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && !['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LOG_FORMAT', 'JOURNAL_STREAM'].includes(k)));
    return new DaemonProcess(spawn(process.execPath, [...nodeArgs, CLI, ...args], { env: { ...base, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  async waitForLog(msg: string, timeoutMs = 10_000, from = 0): Promise<LogLine> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const hit = this.logs.slice(from).find((l) => l.msg === msg);
      if (hit) return hit;
      if (this.proc.exitCode !== null) break;
      await sleep(20);
    }
    throw new Error(`no '${msg}' log within ${timeoutMs} ms; stderr: ${this.stderr}; logs: ${this.logs.map((l) => l.msg).join(' | ')}`);
  }

  /** Kills the process if a test failed half-way, so no daemon outlives its test. */
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Runs a CLI command to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_')));
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A config file for a test daemon: its own state dir, training off, then `extra` TOML. */
export function writeConfig(dir: string, extra = '', name = 'agent.toml', trainer = 'enabled = false'): string {
  const path = join(dir, name);
  writeFileSync(path, `[agent]\nstate_dir = "${join(dir, 'state')}"\n\n[trainer]\n${trainer}\n\n${extra}\n`);
  return path;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
