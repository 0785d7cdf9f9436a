/**
 * pino's levels, as a config key takes them. Empty in a config means "not set here": the
 * process's $LOG_LEVEL (what tests and `LOG_LEVEL=debug icosfl-… serve` use), else 'info'.
 */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function resolveLogLevel(configured: LogLevel | '', env: NodeJS.ProcessEnv = process.env): LogLevel {
  if (configured) return configured;
  const fromEnv = env.LOG_LEVEL;
  return fromEnv && (LOG_LEVELS as readonly string[]).includes(fromEnv) ? (fromEnv as LogLevel) : 'info';
}

/**
 * How records are written (common/log.ts): 'auto' = readable lines on a terminal, JSON under
 * journald or into a pipe or file. Empty in a config: $LOG_FORMAT, else 'auto'.
 */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function resolveLogFormat(configured: LogFormat | '', env: NodeJS.ProcessEnv = process.env): LogFormat {
  if (configured) return configured;
  const fromEnv = env.LOG_FORMAT;
  return fromEnv && (LOG_FORMATS as readonly string[]).includes(fromEnv) ? (fromEnv as LogFormat) : 'auto';
}
