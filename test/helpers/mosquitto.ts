import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { tempDir } from './paths.js';
import { sleep } from './wait.js';

/**
 * A real Mosquitto for tests: its own config in a temp dir, a free 127.0.0.1 port kept across
 * stop()/start(), so a test can restart the broker under connected clients.
 */
export interface MosquittoOptions {
  /** Lines appended to the generated config. */
  extraConfig?: string[];
  /** Keep sessions and retained messages in the temp dir across stop()/start(). Default false. */
  persistence?: boolean;
  /** How long start() waits for the port to accept connections. Default 5000 ms. */
  startTimeoutMs?: number;
  /**
   * The listener and security lines instead of the plain anonymous listener: a TLS broker from
   * deploy/mosquitto/icosfl.conf, say. It must listen on `port` at 127.0.0.1 (waited for).
   */
  listenerConfig?: (port: number) => string[];
  /** The listener speaks TLS: `url` is mqtts://. */
  tls?: boolean;
}

export interface MosquittoBroker {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly running: boolean;
  /** Starts again on the same port (after stop() or kill()). */
  start(): Promise<void>;
  /** SIGTERM, and waits for the exit (Mosquitto saves its persistence file then). */
  stop(): Promise<void>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
  /** Stops it if running and removes the temp dir. */
  cleanup(): Promise<void>;
}

/** The mosquitto binary on PATH or in /usr/sbin, or undefined. */
export function findMosquitto(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'mosquitto');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
  const bin = findMosquitto();
  if (bin === undefined) throw new Error('mosquitto not found on PATH or in /usr/sbin (apt-get install mosquitto)');
  const { dir, cleanup: removeDir } = tempDir('icosfl-mosquitto-');
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  const lines = [
    ...(opts.listenerConfig ? opts.listenerConfig(port) : [`listener ${port} 127.0.0.1`, 'allow_anonymous true']),
    ...(opts.persistence ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']),
    // Run as root (containers, CI), Mosquitto would switch to the 'mosquitto' user otherwise.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    ...(opts.extraConfig ?? []),
  ];
  writeFileSync(config, lines.join('\n') + '\n');
  const startTimeoutMs = opts.startTimeoutMs ?? 5000;
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    if (child !== null) throw new Error('mosquitto is already running');
    let stderr = '';
    const proc = spawn(bin, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child = proc;
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        child = null;
        throw new Error(`mosquitto exited (${proc.exitCode ?? proc.signalCode}) before listening on ${port}:\n${stderr}`);
      }
      if (await canConnect(port)) return;
      if (Date.now() >= deadline) {
        proc.kill('SIGKILL');
        await exited(proc);
        child = null;
        throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${startTimeoutMs} ms:\n${stderr}`);
      }
      await sleep(20);
    }
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    child = null;
    proc.kill(sig);
    await exited(proc);
  };

  await start();
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return child !== null;
    },
    start,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async cleanup() {
      await signal('SIGTERM');
      removeDir();
    },
  };
}
