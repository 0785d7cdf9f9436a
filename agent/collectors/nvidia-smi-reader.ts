import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { IcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { malformed } from './read-source.js';

/**
 * A long-running `nvidia-smi --query-gpu … -lms <interval>` child whose latest line per GPU is
 * cached. systeminformation.graphics() starts nvidia-smi afresh on every call (2.45 s on an H100
 * host); one child that prints every interval costs the agent only a line parse per GPU.
 */

/** `index` first so lines of several GPUs in one interval can be told apart. */
export const QUERY_FIELDS = 'index,utilization.gpu,memory.used,power.draw';

export interface GpuLine {
  index: number;
  utilPct: number;
  memUsedBytes: number;
  powerWatts: number;
}

const MIB = 1024 * 1024;

/** A field of nvidia-smi's csv,nounits output; `[N/A]` / `[Not Supported]` (no sensor) → NaN. */
function field(text: string | undefined, what: string): number {
  const t = (text ?? '').trim();
  if (/^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions)\]?$/i.test(t)) return NaN;
  const v = Number(t);
  if (t === '' || !Number.isFinite(v)) throw malformed('gpu', `nvidia-smi ${what} "${t}"`, 'a number or [N/A]');
  return v;
}

/** Parses one line such as `0, 37, 1234, 68.50` (index, %, MiB, W). */
export function parseNvidiaSmiLine(line: string): GpuLine {
  const parts = line.split(',');
  if (parts.length !== 4) throw malformed('gpu', `nvidia-smi line "${line.trim()}"`, `4 comma-separated fields (${QUERY_FIELDS})`);
  const index = field(parts[0], 'index');
  if (!Number.isInteger(index)) throw malformed('gpu', `nvidia-smi line "${line.trim()}"`, 'an integer GPU index first');
  return {
    index,
    utilPct: field(parts[1], 'utilization.gpu'),
    memUsedBytes: field(parts[2], 'memory.used') * MIB,
    powerWatts: field(parts[3], 'power.draw'),
  };
}

/** The node's GPUs as one set of channels: mean utilisation, total memory used, total board power. */
export function aggregateGpus(lines: readonly GpuLine[]): { utilPct: number; memUsedBytes: number; powerWatts: number } {
  if (lines.length === 0) return { utilPct: NaN, memUsedBytes: NaN, powerWatts: NaN };
  let util = 0;
  let mem = 0;
  let power = 0;
  for (const l of lines) {
    util += l.utilPct;
    mem += l.memUsedBytes;
    power += l.powerWatts;
  }
  return { utilPct: util / lines.length, memUsedBytes: mem, powerWatts: power };
}

export interface NvidiaSmiReaderOptions {
  command: string;
  intervalMs: number;
  logger: Logger;
  clock: () => number;
}

/** Restarts after nvidia-smi exits wait this long, doubling per consecutive failure up to the cap. */
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 60_000;

export class NvidiaSmiReader {
  private child: ChildProcess | undefined;
  private readonly gpus = new Map<number, { line: GpuLine; at: number }>();
  private readonly startedAt: number;
  private lastOutput = '';
  private failure: IcosflError | undefined;
  private absent = false;
  private closed = false;
  private restartDelayMs = RESTART_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: NvidiaSmiReaderOptions) {
    this.startedAt = opts.clock();
    this.start();
  }

  /** Lines older than this are stale: three missed intervals, and never under 3 s. */
  get staleAfterMs(): number {
    return Math.max(3 * this.opts.intervalMs, 3000);
  }

  /** The GPUs' latest lines; throws COLLECTOR_FAILED when nvidia-smi is absent, failing or silent. */
  latest(): GpuLine[] {
    const now = this.opts.clock();
    if (this.absent) throw this.failure!;
    const fresh: GpuLine[] = [];
    for (const [index, g] of this.gpus) {
      if (now - g.at > this.staleAfterMs) this.gpus.delete(index);
      else fresh.push(g.line);
    }
    if (fresh.length > 0) return fresh.sort((a, b) => a.index - b.index);
    if (this.failure) throw this.failure;
    if (now - this.startedAt <= this.staleAfterMs) return []; // still starting: values unknown, not an error
    throw new IcosflError('COLLECTOR_FAILED', `gpu: no output from ${this.opts.command} for ${Math.round(now - this.startedAt)} ms`, {
      details: { lastOutput: this.lastOutput },
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }

  private start(): void {
    const args = [`--query-gpu=${QUERY_FIELDS}`, '--format=csv,noheader,nounits', '-lms', String(this.opts.intervalMs)];
    const child = spawn(this.opts.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // Never keep the agent alive on its own; when the agent dies, the pipe closes and nvidia-smi
    // gets SIGPIPE on its next line.
    child.unref();
    for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        this.absent = true;
        this.failure = new IcosflError('COLLECTOR_FAILED', `gpu: ${this.opts.command} not found on PATH (no NVIDIA driver); GPU metrics skipped`, { cause: err });
      } else {
        this.failure = new IcosflError('COLLECTOR_FAILED', `gpu: starting ${this.opts.command} failed: ${err.message}`, { cause: err });
      }
    });
    const onLine = (line: string): void => {
      if (line.trim() === '') return;
      this.lastOutput = line.trim();
      try {
        const parsed = parseNvidiaSmiLine(line);
        this.gpus.set(parsed.index, { line: parsed, at: this.opts.clock() });
        this.failure = undefined;
        this.restartDelayMs = RESTART_MIN_MS;
      } catch (err) {
        this.failure = err as IcosflError;
      }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.trim() !== '') this.lastOutput = line.trim();
    });
    child.on('exit', (code, signal) => {
      if (this.closed || this.absent || this.child !== child) return;
      this.child = undefined;
      this.failure = new IcosflError('COLLECTOR_FAILED', `gpu: ${this.opts.command} exited (${signal ?? `code ${code}`}): ${this.lastOutput || 'no output'}`, {
        details: { code, signal, lastOutput: this.lastOutput },
      });
      this.opts.logger.debug({ code, signal, restartInMs: this.restartDelayMs }, 'nvidia-smi exited; restarting');
      this.restartTimer = setTimeout(() => this.start(), this.restartDelayMs);
      this.restartTimer.unref();
      this.restartDelayMs = Math.min(this.restartDelayMs * 2, RESTART_MAX_MS);
    });
  }
}
