import { readlinkSync } from 'node:fs';
import pino from 'pino';
import { storageHealth, type StorageHealth } from './storage-health.js';

/**
 * The daemons' log destination: synchronous writes to stdout (the last lines before a watchdog
 * kill or a signal exit are the ones that matter), made to survive a full disk when stdout is a
 * file. sonic-boom emits 'error' for a failed write (ENOSPC, EDQUOT, EIO), and an unheard
 * 'error' event throws out of the logging call, which ended the daemon; here it is recorded in
 * storageHealth (kind 'log') instead. Lines that could not be written wait in memory, up to
 * MAX_PENDING_BYTES (beyond that new lines are dropped and counted), and go out with the next
 * write once there is space again, which also clears the failure.
 */
export const MAX_PENDING_BYTES = 1 << 20;

export interface LogDestinationStats {
  /** Log lines dropped because the pending buffer was full. */
  dropped: number;
}

export function stdoutLogDestination(health: StorageHealth = storageHealth, fd: 1 | 2 = 1): { stream: ReturnType<typeof pino.destination>; stats: LogDestinationStats } {
  const stats: LogDestinationStats = { dropped: 0 };
  const path = stdoutPath(fd);
  const stream = pino.destination({ dest: fd, sync: true, maxLength: MAX_PENDING_BYTES });
  let failing = false;
  stream.on('error', (err: Error) => {
    failing = true;
    health.failed('log', path, err);
  });
  stream.on('drop', () => {
    stats.dropped++;
  });
  stream.on('write', () => {
    if (!failing) return;
    failing = false;
    health.succeeded('log', path);
  });
  return { stream, stats };
}

/** What fd 1 is, for reports: a file's path, or 'pipe:[…]', 'socket:[…]'; 'stdout' if unknown. */
function stdoutPath(fd: 1 | 2): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return 'stdout';
  }
}
