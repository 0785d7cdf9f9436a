import pino from 'pino';
import type { Logger } from '../../../common/log.js';

/** A real pino logger whose JSON lines land in an array, so tests can count what was reported. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}
