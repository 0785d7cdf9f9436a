import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerStart, WorkerStats } from './light-agent-worker.js';

/**
 * Light simulated agents for benchmarks, spread over `processes` child processes
 * (light-agent-worker.ts): each agent an MQTT connection of its own that sends one fixed,
 * pre-encrypted body per FedAvg round and acknowledges each global, without training or decrypting.
 */
export interface LightAgentsOptions {
  url: string;
  federation: string;
  count: number;
  processes: number;
  /** File of `count` (or more) bodies of bodyBytes each, in agent order. */
  bodiesFile: string;
  bodyBytes: number;
  samples: number;
  windows: number;
  idPrefix?: string;
  /** How long start waits for every connection (default 120 s). */
  readyTimeoutMs?: number;
}

export interface LightAgents {
  readonly ids: string[];
  stats(): Promise<WorkerStats>;
  /** Closes every connection and ends the processes; the summed final stats. */
  stop(): Promise<WorkerStats>;
}

const WORKER = fileURLToPath(new URL('./light-agent-worker.js', import.meta.url));

type WorkerEvent = { ev: 'ready' | 'stats' | 'stopped'; stats: WorkerStats } | { ev: 'error'; message: string };

interface Worker {
  child: ChildProcess;
  next(ev: 'ready' | 'stats' | 'stopped', timeoutMs: number): Promise<WorkerStats>;
}

function startWorker(init: WorkerStart): Worker {
  // No inspector or profiler flags of the parent: they are for the coordinator, not the agents.
  const child = fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const waiting = new Map<string, { resolve(s: WorkerStats): void; reject(e: Error): void }>();
  let dead: Error | undefined;
  const failAll = (err: Error) => {
    dead = err;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  child.on('message', (m: WorkerEvent) => {
    if (m.ev === 'error') return failAll(new Error(`light-agent worker ${child.pid}: ${m.message}`));
    const w = waiting.get(m.ev);
    waiting.delete(m.ev);
    w?.resolve(m.stats);
  });
  child.on('exit', (code, signal) => failAll(new Error(`light-agent worker ${child.pid} exited (${code ?? signal})`)));
  child.send({ cmd: 'start', ...init });
  return {
    child,
    next(ev, timeoutMs) {
      if (dead) return Promise.reject(dead);
      return new Promise<WorkerStats>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(ev);
          reject(new Error(`light-agent worker ${child.pid}: no '${ev}' within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(ev, {
          resolve: (s) => {
            clearTimeout(timer);
            resolve(s);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
  };
}

export function sumStats(all: WorkerStats[]): WorkerStats {
  const out: WorkerStats = { agents: 0, connected: 0, announces: 0, updatesSent: 0, acksSent: 0, capTooSmall: 0, errors: 0, firstErrors: [], cpuUserS: 0, cpuSystemS: 0, rssMb: 0 };
  for (const s of all) {
    for (const k of ['agents', 'connected', 'announces', 'updatesSent', 'acksSent', 'capTooSmall', 'errors', 'cpuUserS', 'cpuSystemS', 'rssMb'] as const) out[k] += s[k];
    out.firstErrors.push(...s.firstErrors);
  }
  out.firstErrors = out.firstErrors.slice(0, 5);
  return out;
}

/** Starts the agents; resolves once every one is connected, subscribed and has said it is online. */
export async function startLightAgents(o: LightAgentsOptions): Promise<LightAgents> {
  const prefix = o.idPrefix ?? 'light';
  const width = String(o.count - 1).length;
  const ids = Array.from({ length: o.count }, (_, i) => `${prefix}-${String(i).padStart(width, '0')}`);
  const procs = Math.max(1, Math.min(o.processes, o.count));
  const workers: Worker[] = [];
  const per = Math.ceil(o.count / procs);
  for (let p = 0; p < procs; p++) {
    const slice = ids.slice(p * per, (p + 1) * per);
    if (slice.length === 0) break;
    workers.push(startWorker({ url: o.url, federation: o.federation, ids: slice, bodiesFile: o.bodiesFile, bodyBytes: o.bodyBytes, bodyIndex0: p * per, samples: o.samples, windows: o.windows }));
  }
  const stopAll = async (): Promise<WorkerStats> => {
    const finals = await Promise.all(
      workers.map(async (w) => {
        if (w.child.exitCode !== null || w.child.signalCode !== null) return undefined;
        const done = w.next('stopped', 15_000).catch(() => undefined);
        w.child.send({ cmd: 'stop' });
        const s = await done;
        if (w.child.exitCode === null) w.child.kill('SIGKILL');
        return s;
      }),
    );
    return sumStats(finals.filter((s): s is WorkerStats => s !== undefined));
  };
  try {
    await Promise.all(workers.map((w) => w.next('ready', o.readyTimeoutMs ?? 120_000)));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    ids,
    async stats() {
      const all = await Promise.all(
        workers.map((w) => {
          const s = w.next('stats', 10_000);
          w.child.send({ cmd: 'stats' });
          return s;
        }),
      );
      return sumStats(all);
    },
    stop: stopAll,
  };
}
