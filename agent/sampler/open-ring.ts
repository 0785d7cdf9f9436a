import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { MetricRing } from '../../native/ring.js';

/** Creates a directory the agent needs, with an error that says which one and what to do. */
export function makeDir(dir: string, what: 'state' | 'runtime'): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
    const flag = what === 'state' ? '--state-dir' : '--runtime-dir';
    throw new IcosflError('RING_IO', `cannot create the ${what} directory ${dir} (${code}); run as the service user, or pass ${flag} DIR`, { cause });
  }
}

/** The ring file inside the state directory. */
export const RING_FILE = 'metrics.ring';

/**
 * Opens (or creates) the state directory's ring for the configured channels. The channel names
 * are the ring's schema tag, so a ring written with another metric list or capacity is never
 * misread: it is renamed aside (`metrics.ring.<epoch-ms>.old`, logged with its path, for the
 * operator to keep or delete) and a fresh ring is started. Refusing to start instead would put
 * a systemd service into a restart loop over a deliberate config change.
 */
export function openStateRing(stateDir: string, metrics: string[], capacity: number, logger: Logger): MetricRing {
  makeDir(stateDir, 'state');
  const path = join(stateDir, RING_FILE);
  const opts = { path, capacity, channels: metrics.length, schemaTag: metrics.join(','), logger };
  try {
    return MetricRing.open(opts);
  } catch (err) {
    if (!isIcosflError(err, 'RING_LAYOUT_MISMATCH')) throw err;
    const aside = `${path}.${Date.now()}.old`;
    renameSync(path, aside);
    logger.warn({ path, aside, reason: err.message }, 'ring layout differs from the config; moved the old ring aside');
    return MetricRing.open(opts);
  }
}
