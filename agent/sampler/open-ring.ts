import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { isIcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { MetricRing } from '../../native/ring.js';

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
  mkdirSync(stateDir, { recursive: true, mode: 0o750 });
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
