import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { storageHealth } from '../../common/storage-health.js';
import { inspectRingFile, MetricRing, roundedCapacity, type RingHeaderInfo } from '../../native/ring.js';

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
/** Where the new layout is built during a migration; renamed over the ring when complete. */
export const MIGRATING_SUFFIX = '.migrating';
/** The one backup of a ring that could not be migrated (another format version), replaced by the next. */
export const UNMIGRATED_SUFFIX = '.unmigrated';
/** Ring format and value type this build reads (native/src/ring.hpp). */
const FORMAT_VERSION = 1;
const DTYPE_F64_TIME_F32_VALUES = 1;

export interface OpenStateRingOptions {
  /**
   * What to do with a ring of another layout: 'migrate' (the daemon) rewrites it into the new
   * layout; 'refuse' (`icosfl-agent sample`, which must never rewrite the daemon's history)
   * throws RING_LAYOUT_MISMATCH and leaves it alone. Default 'migrate'.
   */
  onLayoutChange?: 'migrate' | 'refuse';
}

/** How the samples of one layout map onto another (planRingMigration). */
export interface RingMigrationPlan {
  /** Samples the old ring holds, and how many of them (the newest) the new one keeps. */
  held: number;
  kept: number;
  fromCapacity: number;
  toCapacity: number;
  /** For each new channel, its index in the old ring, or -1 (stored as missing, NaN). */
  sourceOf: number[];
  /** Channel names only the old ring has (their values are not carried over), or only the new. */
  dropped: string[];
  added: string[];
}

/** The channel names a ring's schema tag lists (the comma-joined metric names), or null if it does not. */
function tagNames(tag: string, channels: number): string[] | null {
  const names = tag.length > 0 ? tag.split(',') : [];
  return names.length === channels ? names : null;
}

/**
 * What migrating a ring of (oldCapacity, oldTag, oldChannels) holding `held` samples into
 * (metrics, capacity) would keep: the newest min(held, new capacity) samples, the channels of
 * the same name (or all of them in order when only the capacity changed), NaN for new channels.
 */
export function planRingMigration(old: { capacity: number; channels: number; schemaTag: string; held: number }, metrics: string[], capacity: number): RingMigrationPlan {
  const toCapacity = roundedCapacity(capacity);
  const newTag = metrics.join(',');
  const oldNames = tagNames(old.schemaTag, old.channels);
  let sourceOf: number[];
  if (old.schemaTag === newTag && old.channels === metrics.length) sourceOf = metrics.map((_, i) => i);
  else if (oldNames) sourceOf = metrics.map((m) => oldNames.indexOf(m));
  else sourceOf = metrics.map(() => -1);
  const used = new Set(sourceOf);
  return {
    held: old.held,
    kept: Math.min(old.held, toCapacity),
    fromCapacity: old.capacity,
    toCapacity,
    sourceOf,
    dropped: (oldNames ?? []).filter((_, j) => !used.has(j)),
    added: metrics.filter((_, i) => sourceOf[i] === -1),
  };
}

/** One line for people: what a restart with the new layout does to the ring's history. */
export function describeRingMigration(p: RingMigrationPlan): string {
  const parts: string[] = [];
  if (p.fromCapacity !== p.toCapacity) parts.push(`capacity ${p.fromCapacity} → ${p.toCapacity}`);
  if (p.dropped.length) parts.push(`drops ${p.dropped.join(', ')}`);
  if (p.added.length) parts.push(`adds ${p.added.join(', ')} (missing until sampled)`);
  if (p.sourceOf.every((j) => j < 0)) return `${parts.join('; ')}: no channel in common, so a restart keeps the ${p.held} samples' ring as ${RING_FILE}${UNMIGRATED_SUFFIX} and starts empty`;
  const which = p.kept < p.held ? `the newest ${p.kept} of ${p.held} samples` : `all ${p.held} samples`;
  return `${parts.join('; ')}: a restart migrates ${which}`;
}

function layoutOf(h: RingHeaderInfo): string {
  return `capacity ${h.capacity}, ${h.channels} channels (${h.schemaTag || 'unnamed'})`;
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The hint RING_NO_SPACE gets at this level, where the config keys are known. */
function withSpaceHint(err: unknown, what: string): unknown {
  if (!isIcosflError(err, 'RING_NO_SPACE')) return err;
  const d = err.details ?? {};
  storageHealth.failed('ring', String(d.path ?? what), err);
  return new IcosflError('RING_NO_SPACE', `${err.message}; ${what}: free at least ${String(d.neededBytes)} bytes there, or lower sampler.ring_capacity`, { cause: err, details: d });
}

/** Moves a ring that cannot be migrated to the one backup slot (replacing the previous) and says so. */
function keepUnmigrated(path: string, why: string, logger: Logger): void {
  const backup = `${path}${UNMIGRATED_SUFFIX}`;
  renameSync(path, backup);
  syncDir(dirname(path));
  logger.warn({ path, keptAs: backup, reason: why }, 'ring could not be migrated to the configured layout; kept it as the one backup and started an empty ring');
}

/**
 * Builds the new layout beside the old ring (`metrics.ring.migrating`), copies the plan's
 * samples into it, then renames it over the old one: a crash at any point leaves the old ring
 * or the new, complete one (a leftover `.migrating` is removed at the next open). The old ring
 * is opened, and so locked, for the whole copy: a running daemon's ring is never migrated.
 * Needs the new file's bytes free beside the old one (RING_NO_SPACE otherwise, old ring intact).
 */
function migrate(path: string, header: RingHeaderInfo, metrics: string[], capacity: number, logger: Logger): void {
  const old = MetricRing.open({ path, capacity: header.capacity, channels: header.channels, schemaTag: header.schemaTag, logger });
  const tmp = `${path}${MIGRATING_SUFFIX}`;
  let fresh: MetricRing | undefined;
  try {
    const plan = planRingMigration({ ...header, held: old.size }, metrics, capacity);
    if (plan.sourceOf.every((j) => j < 0)) {
      old.close();
      keepUnmigrated(path, `no channel of ${layoutOf(header)} is in the configured list (${metrics.join(',')})`, logger);
      return;
    }
    rmSync(tmp, { force: true });
    try {
      fresh = MetricRing.open({ path: tmp, capacity, channels: metrics.length, schemaTag: metrics.join(','), logger });
    } catch (err) {
      throw withSpaceHint(err, `migrating ${path} to the configured layout needs a second ring file beside it until the copy is done`);
    }
    const { timestamps, values } = old.latest(plan.kept);
    const C = metrics.length;
    const oldC = header.channels;
    const out = new Float32Array(plan.kept * C).fill(NaN);
    for (let r = 0; r < plan.kept; r++) {
      for (let c = 0; c < C; c++) {
        const j = plan.sourceOf[c]!;
        if (j >= 0) out[r * C + c] = values[r * oldC + j]!;
      }
    }
    fresh.pushBatch(timestamps, out);
    fresh.close();
    renameSync(tmp, path);
    syncDir(dirname(path));
    const lost = plan.kept < plan.held || plan.dropped.length > 0;
    logger[lost ? 'warn' : 'info'](
      { path, from: layoutOf(header), to: `capacity ${plan.toCapacity}, ${C} channels (${metrics.join(',')})`, held: plan.held, kept: plan.kept, dropped: plan.dropped, added: plan.added },
      'ring migrated to the configured layout',
    );
  } catch (err) {
    fresh?.close();
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    old.close();
  }
}

/**
 * Opens (or creates) the state directory's ring for the configured channels. The channel names
 * are the ring's schema tag, so a ring written with another metric list or capacity is never
 * misread. A ring of another layout is migrated (planRingMigration: the newest samples that fit,
 * the channels both lists name, NaN for new ones); one that cannot be (another format version,
 * no channel in common) is kept as `metrics.ring.unmigrated`, replacing an earlier one, with a
 * warning. Refusing to start instead would put a systemd service into a restart loop over a
 * deliberate config change. `onLayoutChange: 'refuse'` (the sample command) changes nothing.
 */
export function openStateRing(stateDir: string, metrics: string[], capacity: number, logger: Logger, opts: OpenStateRingOptions = {}): MetricRing {
  makeDir(stateDir, 'state');
  const path = join(stateDir, RING_FILE);
  const schemaTag = metrics.join(',');
  const refuse = opts.onLayoutChange === 'refuse';
  if (!refuse) {
    rmSync(`${path}${MIGRATING_SUFFIX}`, { force: true }); // a migration a crash interrupted
    noteLegacyFiles(stateDir, logger);
  }
  if (existsSync(path)) {
    const h = inspectRingFile(path);
    // An invalid header is MetricRing.open's case: moved aside to `.corrupt`, a fresh ring started.
    const sameLayout = h.capacity === roundedCapacity(capacity) && h.channels === metrics.length && h.schemaTag === schemaTag;
    const readable = h.version === FORMAT_VERSION && h.dtype === DTYPE_F64_TIME_F32_VALUES;
    if (h.valid && !(sameLayout && readable)) {
      if (refuse) {
        throw new IcosflError(
          'RING_LAYOUT_MISMATCH',
          `ring file ${path} holds ${layoutOf(h)}; this config asks for capacity ${roundedCapacity(capacity)}, ${metrics.length} channels (${schemaTag}); ` +
            `'icosfl-agent sample' never migrates or replaces a ring: run it with the daemon's config, or pass --state-dir DIR for a ring of its own`,
          { details: { path } },
        );
      }
      if (!readable) keepUnmigrated(path, `format version ${h.version}, dtype ${h.dtype}; this build reads version ${FORMAT_VERSION}, dtype ${DTYPE_F64_TIME_F32_VALUES}`, logger);
      else migrate(path, h, metrics, capacity, logger);
    }
  }
  try {
    return MetricRing.open({ path, capacity, channels: metrics.length, schemaTag, logger });
  } catch (err) {
    throw withSpaceHint(err, `the ring in ${stateDir}`);
  }
}

/** Rings set aside by versions before migration existed (`metrics.ring.<ms>.old`): nothing reads them. */
function noteLegacyFiles(stateDir: string, logger: Logger): void {
  let legacy: string[];
  try {
    legacy = readdirSync(stateDir).filter((f) => /^metrics\.ring\.\d+\.old$/.test(f));
  } catch {
    return;
  }
  if (legacy.length > 0) logger.warn({ stateDir, files: legacy }, 'rings set aside by an older version are not read; delete them once not needed');
}
