import { isatty } from 'node:tty';
import pino, { type DestinationStream, type Logger } from 'pino';
import { LOG_FORMATS, resolveLogFormat, type LogFormat } from './config/log-level.js';
import { formatRecord } from './log-pretty.js';

/**
 * One root pino logger per process and a child per component: `childLogger('ring')`. Messages
 * are constants; data goes in the object. Where records go (resolveLogOutput):
 * - JSON lines (pino's own) under systemd/journald ($JOURNAL_STREAM set) or when the stream is
 *   not a terminal (a pipe, a file), so journald and log shippers get the fields as they are;
 * - one readable line per record on a terminal (log-pretty.ts), in colour unless $NO_COLOR.
 * `log_format` / $LOG_FORMAT = auto | json | pretty chooses explicitly. Daemons log on stdout
 * (journald stores it); every command that prints something logs on stderr, so stdout carries
 * only its table or JSON. LOG_LEVEL sets the default root's level; tests set it to 'silent'.
 */

/** Where a logger writes and how: what a worker thread needs to log like its parent. */
export interface LogOutput {
  fd: 1 | 2;
  format: 'json' | 'pretty';
  colour: boolean;
}

export function resolveLogOutput(format: LogFormat, fd: 1 | 2, env: NodeJS.ProcessEnv = process.env): LogOutput {
  const tty = isatty(fd);
  const chosen = format === 'auto' ? (tty && !env.JOURNAL_STREAM ? 'pretty' : 'json') : format;
  // no-color.org: set and not empty means no colour.
  return { fd, format: chosen, colour: chosen === 'pretty' && tty && !env.NO_COLOR };
}

/** pino writes one JSON line per record here; each is rewritten as its readable line. */
function prettyStream(out: DestinationStream, colour: boolean): DestinationStream {
  return {
    write(line: string) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return out.write(line);
      }
      return out.write(formatRecord(record, colour));
    },
  };
}

const outputs = new WeakMap<Logger, LogOutput>();

/**
 * A root logger. Writes are synchronous: the last lines before a watchdog kill or a signal exit
 * are the ones that matter (pino's default buffers them when the stream is a pipe).
 */
export function createLogger(opts: {
  level: string;
  output: LogOutput;
  base?: Record<string, unknown>;
  /** Each record is written through this: a progress line on the same terminal steps aside and comes back (simulate/progress.ts). */
  aroundRecord?: (write: () => void) => void;
  /** The sink for output.fd instead of a plain pino destination (the daemons': common/log-destination.ts survives a full disk). */
  destination?: DestinationStream;
}): Logger {
  const dest = opts.destination ?? pino.destination({ dest: opts.output.fd, sync: true });
  const formatted = opts.output.format === 'pretty' ? prettyStream(dest, opts.output.colour) : dest;
  const around = opts.aroundRecord;
  const stream: DestinationStream = around ? { write: (line: string) => around(() => formatted.write(line)) } : formatted;
  const logger = pino({ level: opts.level, base: opts.base ?? { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
  outputs.set(logger, opts.output);
  return logger;
}

/** Logs, once per logger, that $LOG_FORMAT was ignored: a typo must not go unnoticed. */
export function warnOnBadLogFormat(logger: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const v = env.LOG_FORMAT;
  if (v && !(LOG_FORMATS as readonly string[]).includes(v)) logger.warn({ LOG_FORMAT: v, valid: LOG_FORMATS }, 'LOG_FORMAT is not one of auto, json, pretty; using auto');
}

let root: Logger | undefined;

/** The root: unless a daemon set its own, on stderr at $LOG_LEVEL (default info) in $LOG_FORMAT. */
export function rootLogger(): Logger {
  if (!root) {
    root = createLogger({ level: process.env.LOG_LEVEL ?? 'info', output: resolveLogOutput(resolveLogFormat(''), 2) });
    warnOnBadLogFormat(root);
  }
  return root;
}

/** Replace the root (e.g. with a level from the config file); children made later inherit it. */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

/** Where the root writes (a root made outside createLogger counts as the default's output). */
export function rootLogOutput(): LogOutput {
  return outputs.get(rootLogger()) ?? resolveLogOutput(resolveLogFormat(''), 2);
}

export function childLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

export type { Logger };
