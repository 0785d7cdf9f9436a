/**
 * What this process knows about its disks: every failed write of a state file, the ring, a key
 * file or the log is recorded here by kind and path, and cleared by the next write of that path
 * that succeeds. The agent's `status` (storage field) and Prometheus metrics read it; nothing
 * here stops or retries anything. One per process (`storageHealth`), because the writers are
 * spread over modules that otherwise share nothing.
 */
export const STORAGE_KINDS = ['ring', 'model', 'federated-model', 'keys', 'journal', 'snapshot', 'aggregate', 'log', 'privacy'] as const;
export type StorageKind = (typeof STORAGE_KINDS)[number];

export interface StorageFailure {
  kind: StorageKind;
  path: string;
  /** errno name (ENOSPC, EDQUOT, EIO, …), or 'UNKNOWN'. */
  errno: string;
  message: string;
  /** ISO time of the latest failure of this path. */
  at: string;
  /** Failures of this path in a row. */
  count: number;
}

export interface StorageReport {
  /** True while some path's latest write failed. */
  degraded: boolean;
  failing: StorageFailure[];
  /** Failed writes since the process started, by kind. */
  write_failures: Record<StorageKind, number>;
  /** Paths that failed and then wrote fine again, since the process started. */
  recoveries: number;
}

/** The errno name of a Node or native error, if it has one. */
export function errnoOf(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown; cause?: unknown } | null;
  if (typeof e?.errno === 'string' && /^E[A-Z0-9]+$/.test(e.errno)) return e.errno;
  if (typeof e?.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)) return e.code;
  if (e?.cause !== undefined && e.cause !== err) return errnoOf(e.cause);
  return 'UNKNOWN';
}

export class StorageHealth {
  private readonly failing = new Map<string, StorageFailure>();
  private readonly totals = Object.fromEntries(STORAGE_KINDS.map((k) => [k, 0])) as Record<StorageKind, number>;
  private recovered = 0;
  private readonly listeners = new Set<(f: StorageFailure | null, kind: StorageKind, path: string) => void>();

  failed(kind: StorageKind, path: string, err: unknown): StorageFailure {
    const key = `${kind}\0${path}`;
    const prev = this.failing.get(key);
    const f: StorageFailure = { kind, path, errno: errnoOf(err), message: (err as Error)?.message ?? String(err), at: new Date().toISOString(), count: (prev?.count ?? 0) + 1 };
    this.failing.set(key, f);
    this.totals[kind]++;
    for (const l of this.listeners) l(f, kind, path);
    return f;
  }

  succeeded(kind: StorageKind, path: string): void {
    const key = `${kind}\0${path}`;
    if (!this.failing.delete(key)) return;
    this.recovered++;
    for (const l of this.listeners) l(null, kind, path);
  }

  /** Called on every change: a failure (f) or a recovery (null). */
  onChange(listener: (f: StorageFailure | null, kind: StorageKind, path: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get degraded(): boolean {
    return this.failing.size > 0;
  }

  report(): StorageReport {
    return { degraded: this.degraded, failing: [...this.failing.values()].map((f) => ({ ...f })), write_failures: { ...this.totals }, recoveries: this.recovered };
  }
}

export const storageHealth = new StorageHealth();
