import pino, { type Logger } from 'pino';

/**
 * One root pino logger per process (JSON lines on stdout, which journald stores as is) and a
 * child per component: `childLogger('ring')`. Messages are constants; data goes in the object.
 * LOG_LEVEL overrides the level; tests set it to 'silent' or capture stdout.
 */
let root: Logger | undefined;

export function rootLogger(): Logger {
  root ??= pino({
    level: process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
  return root;
}

/** Replace the root (e.g. with a level from the config file); children made later inherit it. */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

export function childLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

export type { Logger };
