/**
 * A progress line for long work (`icosfl-simulate run` over many clients and rounds), written
 * to stderr so stdout keeps only the table or JSON. On a terminal one line is rewritten in
 * place (\r); into a pipe or a log file a line is written at every tenth of the work, or when
 * 30 s passed since the last one, and at the end.
 */
export interface ProgressOptions {
  total: number;
  /** What is counted, plural: "rounds". */
  noun: string;
  write: (text: string) => void;
  tty: boolean;
  now?: () => number;
  /** Off a terminal: the longest quiet stretch. */
  everyMs?: number;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  return m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class Progress {
  private readonly started: number;
  private readonly now: () => number;
  private readonly everyMs: number;
  private lastWrite: number;
  private lastTenth = 0;
  private shown = false;
  private lastLine = '';

  constructor(private readonly opts: ProgressOptions) {
    if (!Number.isInteger(opts.total) || opts.total < 1) throw new RangeError(`Progress: total must be a positive integer, got ${opts.total}`);
    this.now = opts.now ?? (() => Date.now());
    this.everyMs = opts.everyMs ?? 30_000;
    this.started = this.now();
    this.lastWrite = this.started;
  }

  /** The line for `done` of total: count, percentage, time left (from the pace so far), and what just finished. */
  line(done: number, detail = ''): string {
    const { total, noun } = this.opts;
    const elapsed = this.now() - this.started;
    const left = done >= total ? 'done' : done > 0 ? `~${formatDuration((elapsed / done) * (total - done))} left` : 'time left not known yet';
    return `${noun} ${done}/${total} (${Math.floor((100 * done) / total)} %), ${formatDuration(elapsed)} so far, ${left}${detail ? `; ${detail}` : ''}`;
  }

  update(done: number, detail = ''): void {
    const n = Math.min(done, this.opts.total);
    if (this.opts.tty) {
      this.lastLine = this.line(n, detail);
      this.opts.write(`\r${this.lastLine}\x1b[K`);
      this.shown = true;
      return;
    }
    const tenth = Math.floor((10 * n) / this.opts.total);
    const t = this.now();
    if (tenth > this.lastTenth || t - this.lastWrite >= this.everyMs || n === this.opts.total) {
      this.lastTenth = tenth;
      this.lastWrite = t;
      this.opts.write(`${this.line(n, detail)}\n`);
    }
  }

  /**
   * Writes something else on the terminal (a log record) with `write`: the line is cleared
   * first and drawn again below it, so the record starts its own line and the progress stays last.
   */
  around(write: () => void): void {
    if (!(this.opts.tty && this.shown)) return write();
    this.opts.write('\r\x1b[K');
    write();
    this.opts.write(`${this.lastLine}\x1b[K`);
  }

  /** Ends the rewritten line on a terminal, so what follows starts on its own line. */
  end(): void {
    if (this.opts.tty && this.shown) this.opts.write('\n');
    this.shown = false;
  }
}
