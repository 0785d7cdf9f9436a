import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync, writevSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { IcosflError } from '../../common/errors.js';
import { writeFailed, writeFileAtomic } from '../../common/atomic-file.js';
import { storageHealth } from '../../common/storage-health.js';
import type { Logger } from '../../common/log.js';
import type { PartialSum, Update } from '../../common/protocol/messages.js';
import type { RoundEvent } from './events.js';
import type { CoordinatorState } from './state.js';

/**
 * The coordinator's persistence: a snapshot of the state plus a journal of the events since
 * (event sourcing). The reducer is pure, so replaying the journal over the snapshot rebuilds
 * exactly the state a killed process had, and with it the same global model. Why not SQLite: one
 * append and one fdatasync per event is all a round needs (0.4 ms here for a 24 KB update; the
 * thousands of presences and acks share theirs, D19), the journal doubles as the store of the
 * round's update bodies, and there is no native build.
 *
 * Files in the state directory:
 *   state.json            snapshot (atomic rename), with the journal epoch it continues in
 *   journal-<epoch>.log   events since the snapshot, one record each:
 *       off size  field (little-endian)
 *         0    4  magic 'ICJR'
 *         4    4  JSON length J
 *         8    4  body length B (an update's or a partial sum's ciphertext; 0 for other events)
 *        12    4  CRC-32 of the J + B bytes that follow
 *        16    J  the event as JSON (an update or partial without its body)
 *      16+J    B  the body
 *   aggregates/<round>.bin  sums the session may still publish (atomic files)
 *   lock                  the pid of the process that holds the directory
 * A record that is torn (a crash mid-append) ends the journal: it is cut off and logged. A
 * snapshot written, then a crash before the old journal is deleted, leaves a journal of an older
 * epoch, which is ignored and removed.
 */
export interface JournalLoad {
  snapshot: CoordinatorState | undefined;
  events: RoundEvent[];
}

export interface RoundJournal {
  load(): JournalLoad;
  /**
   * Records an event before it is applied. `group`: written at once (a killed process keeps it)
   * but its fdatasync is shared with the events of the next GROUP_COMMIT_MS; otherwise synced now
   * (with every grouped event before it).
   */
  append(event: RoundEvent, group?: boolean): void;
  /** Syncs the grouped events: called before an effect others see (an announcement, a global). */
  sync(): void;
  checkpoint(state: CoordinatorState): void;
  /** The stored bodies of these agents' updates of `round`, in the order given (a shard's partial sum: partialBodyKey). */
  updateBodies(round: number, agents: string[]): Uint8Array[];
  putAggregate(round: number, bytes: Uint8Array): void;
  getAggregate(round: number): Uint8Array | undefined;
  /** Forgets round's update bodies and every aggregate not in `keep`. */
  release(round: number, keep: readonly number[]): void;
  close(): void;
}

/**
 * State directories this process holds. A lock file naming this process's own pid is taken
 * over as stale (a container's coordinator is pid 1 after every restart), so a second journal
 * opened on the same directory by this process is refused here instead.
 */
const HELD_HERE = new Set<string>();

/** How long a grouped event waits for its fdatasync at most (decisions D19). */
export const GROUP_COMMIT_MS = 20;

const RECORD_MAGIC = 0x524a4349; // 'ICJR' read as little-endian uint32
const RECORD_HEADER = 16;
const MAX_RECORD_JSON = 16 * 1024 * 1024;

/** The name a shard's partial sum is stored under beside the agents' updates ('#' is in no agent id). */
export function partialBodyKey(shard: number): string {
  return `#shard-${shard}`;
}

/** Events that carry a ciphertext: the round and key it is stored under. */
function bodyKey(event: RoundEvent): { round: number; key: string } | undefined {
  if (event.type === 'update') return { round: event.message.round, key: event.message.agent };
  if (event.type === 'partial') return { round: event.message.round, key: partialBodyKey(event.message.shard) };
  return undefined;
}

function encodeRecord(event: RoundEvent): { json: Buffer; body: Uint8Array } {
  if (event.type === 'update' || event.type === 'partial') {
    const { body, ...rest } = event.message;
    return { json: Buffer.from(JSON.stringify({ ...event, message: rest })), body };
  }
  return { json: Buffer.from(JSON.stringify(event)), body: new Uint8Array(0) };
}

/** Keeps events and bodies in memory: what simulate runs on (nothing survives the process). */
export class MemoryJournal implements RoundJournal {
  readonly #bodies = new Map<number, Map<string, Uint8Array>>();
  readonly #aggregates = new Map<number, Uint8Array>();
  #snapshot: CoordinatorState | undefined;
  #events: RoundEvent[] = [];

  load(): JournalLoad {
    // A copy: the runner reduces over its snapshot in place.
    return { snapshot: this.#snapshot && structuredClone(this.#snapshot), events: [...this.#events] };
  }

  append(event: RoundEvent): void {
    this.#events.push(event);
    const at = bodyKey(event);
    if (at && (event.type === 'update' || event.type === 'partial')) {
      const m = this.#bodies.get(at.round) ?? new Map<string, Uint8Array>();
      m.set(at.key, event.message.body);
      this.#bodies.set(at.round, m);
    }
  }

  checkpoint(state: CoordinatorState): void {
    this.#snapshot = structuredClone(state);
    this.#events = [];
  }

  updateBodies(round: number, agents: string[]): Uint8Array[] {
    const m = this.#bodies.get(round);
    return agents.map((a) => {
      const b = m?.get(a);
      if (!b) throw new IcosflError('STATE_CORRUPT', `no stored update of agent ${a} for round ${round}`);
      return b;
    });
  }

  putAggregate(round: number, bytes: Uint8Array): void {
    this.#aggregates.set(round, bytes);
  }

  getAggregate(round: number): Uint8Array | undefined {
    return this.#aggregates.get(round);
  }

  release(round: number, keep: readonly number[]): void {
    this.#bodies.delete(round);
    for (const r of [...this.#aggregates.keys()]) if (!keep.includes(r)) this.#aggregates.delete(r);
  }

  sync(): void {}

  close(): void {}
}

export class FileJournal implements RoundJournal {
  readonly #dir: string;
  readonly #log: Logger;
  #epoch = 0;
  #fd: number | undefined;
  #size = 0;
  /** round → agent → [offset, length] of the body in the current journal file. */
  readonly #bodies = new Map<number, Map<string, [number, number]>>();
  #locked = false;
  /** Grouped events written since the last fdatasync, and the timer that will sync them. */
  #unsynced = false;
  #syncTimer: NodeJS.Timeout | undefined;

  constructor(dir: string, logger: Logger) {
    this.#dir = dir;
    this.#log = logger;
  }

  #journalPath(epoch: number): string {
    return join(this.#dir, `journal-${epoch}.log`);
  }

  #aggregatePath(round: number): string {
    return join(this.#dir, 'aggregates', `${round}.bin`);
  }

  /** One coordinator per state directory: a second one would interleave journals. */
  #lock(): void {
    if (this.#locked) return;
    const path = join(this.#dir, 'lock');
    const key = resolve(this.#dir);
    if (HELD_HERE.has(key)) throw new IcosflError('COORDINATOR_BUSY', `${this.#dir} is in use by another coordinator of this process (${process.pid})`, { details: { pid: process.pid } });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        this.#locked = true;
        HELD_HERE.add(key);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number(readFileSync(path, 'utf8').trim());
      let alive = false;
      try {
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive) throw new IcosflError('COORDINATOR_BUSY', `${this.#dir} is in use by coordinator process ${pid}; stop it first (or use another state_dir)`, { details: { pid } });
      // The holder is gone (killed): its lock is stale.
      unlinkSync(path);
    }
    throw new IcosflError('COORDINATOR_BUSY', `${this.#dir}: could not take the lock`);
  }

  load(): JournalLoad {
    try {
      mkdirSync(join(this.#dir, 'aggregates'), { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new IcosflError('STATE_CORRUPT', `cannot create the coordinator state directory ${this.#dir} (${(cause as NodeJS.ErrnoException).code ?? cause}); run as the service user or set [coordinator] state_dir`, { cause });
    }
    this.#lock();
    const snapshotPath = join(this.#dir, 'state.json');
    let snapshot: CoordinatorState | undefined;
    if (existsSync(snapshotPath)) {
      try {
        const parsed = JSON.parse(readFileSync(snapshotPath, 'utf8')) as { epoch?: unknown; state?: CoordinatorState };
        if (!Number.isInteger(parsed.epoch) || typeof parsed.state !== 'object' || parsed.state?.format !== 1) throw new Error('not an icosfl coordinator state (format 1)');
        snapshot = parsed.state;
        this.#epoch = parsed.epoch as number;
      } catch (err) {
        // Kept for inspection, never overwritten; the coordinator starts afresh beside it.
        const aside = `${snapshotPath}.corrupt-${Date.now()}`;
        renameSync(snapshotPath, aside);
        this.#log.error({ err, movedTo: aside }, 'coordinator state is corrupt; starting a fresh one');
        this.#epoch = Date.now();
      }
    }
    for (const f of readdirSync(this.#dir)) {
      const m = /^journal-(\d+)\.log$/.exec(f);
      if (m && Number(m[1]) !== this.#epoch) {
        rmSync(join(this.#dir, f), { force: true });
        this.#log.debug({ file: f }, 'journal of an older snapshot removed');
      }
    }
    const events = this.#replay();
    return { snapshot, events };
  }

  /** Reads the current journal, indexes update bodies, cuts a torn tail; leaves the file open for appends. */
  #replay(): RoundEvent[] {
    const path = this.#journalPath(this.#epoch);
    this.#fd = openSync(path, existsSync(path) ? 'r+' : 'w+', 0o600);
    const size = fstatSync(this.#fd).size;
    const data = size > 0 ? readFileSync(path) : Buffer.alloc(0);
    const events: RoundEvent[] = [];
    let off = 0;
    while (off < data.length) {
      const bad = (why: string) => {
        this.#log.error({ path, offset: off, size: data.length, why }, 'journal record unreadable; the journal is cut off there');
        return true;
      };
      if (data.length - off < RECORD_HEADER) {
        bad('torn header');
        break;
      }
      const magic = data.readUInt32LE(off);
      const J = data.readUInt32LE(off + 4);
      const B = data.readUInt32LE(off + 8);
      const crc = data.readUInt32LE(off + 12);
      if (magic !== RECORD_MAGIC || J > MAX_RECORD_JSON || off + RECORD_HEADER + J + B > data.length) {
        bad(magic !== RECORD_MAGIC ? 'bad magic' : 'torn record');
        break;
      }
      const payload = data.subarray(off + RECORD_HEADER, off + RECORD_HEADER + J + B);
      if (crc32(payload) !== crc) {
        bad('checksum mismatch');
        break;
      }
      let event: RoundEvent;
      try {
        event = JSON.parse(payload.subarray(0, J).toString('utf8')) as RoundEvent;
      } catch {
        bad('not JSON');
        break;
      }
      const at = bodyKey(event);
      if (at && (event.type === 'update' || event.type === 'partial')) {
        const bodyAt = off + RECORD_HEADER + J;
        (event.message as Update | PartialSum).body = new Uint8Array(data.subarray(bodyAt, bodyAt + B));
        this.#index(at.round, at.key, bodyAt, B);
      }
      events.push(event);
      off += RECORD_HEADER + J + B;
    }
    if (off < data.length) ftruncateSync(this.#fd, off);
    this.#size = off;
    return events;
  }

  #index(round: number, agent: string, offset: number, length: number): void {
    const m = this.#bodies.get(round) ?? new Map<string, [number, number]>();
    m.set(agent, [offset, length]);
    this.#bodies.set(round, m);
  }

  append(event: RoundEvent, group = false): void {
    if (this.#fd === undefined) throw new Error('FileJournal.append before load()');
    const { json, body } = encodeRecord(event);
    const header = Buffer.alloc(RECORD_HEADER);
    header.writeUInt32LE(RECORD_MAGIC, 0);
    header.writeUInt32LE(json.length, 4);
    header.writeUInt32LE(body.length, 8);
    header.writeUInt32LE(crc32(body, crc32(json)), 12);
    const length = RECORD_HEADER + json.length + body.length;
    // One writev of the three parts, no joined copy (an update's body is its ciphertext); a short
    // write (a signal) is finished part by part from where it stopped.
    try {
      let written = writevSync(this.#fd, [header, json, body], this.#size);
      if (written < length) {
        const record = Buffer.concat([header, json, body]);
        while (written < length) written += writeSync(this.#fd, record, written, length - written, this.#size + written);
      }
      // Durable before the event's effects run and before the message is acknowledged; a grouped
      // event is in the kernel's cache now and on disk within GROUP_COMMIT_MS, or before any
      // announcement or global (sync()).
      if (group) this.#groupSync();
      else {
        fdatasyncSync(this.#fd);
        this.#synced();
      }
    } catch (err) {
      // Not journaled, so not accepted: the runner neither applies the event nor runs its
      // effects. The torn tail is cut off so the next append (and a replay) starts clean.
      try {
        ftruncateSync(this.#fd, this.#size);
      } catch {
        // load() drops a torn tail record anyway.
      }
      throw writeFailed('journal', this.#journalPath(this.#epoch), err, `the ${event.type} event was not recorded and not applied`);
    }
    storageHealth.succeeded('journal', this.#journalPath(this.#epoch));
    const at = bodyKey(event);
    if (at) this.#index(at.round, at.key, this.#size + RECORD_HEADER + json.length, body.length);
    this.#size += length;
  }

  #groupSync(): void {
    this.#unsynced = true;
    this.#syncTimer ??= setTimeout(() => {
      this.#syncTimer = undefined;
      try {
        this.sync();
      } catch (err) {
        // Tried again at the next sync (the next ungrouped event, announcement or global).
        this.#log.error({ err }, 'journal sync failed');
      }
    }, GROUP_COMMIT_MS);
    this.#syncTimer.unref();
  }

  #synced(): void {
    this.#unsynced = false;
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
  }

  sync(): void {
    if (!this.#unsynced || this.#fd === undefined) return;
    try {
      fdatasyncSync(this.#fd);
    } catch (err) {
      throw writeFailed('journal', this.#journalPath(this.#epoch), err, 'the events recorded since the last sync may not survive a power loss');
    }
    this.#synced();
    storageHealth.succeeded('journal', this.#journalPath(this.#epoch));
  }

  checkpoint(state: CoordinatorState): void {
    const epoch = this.#epoch + 1;
    writeFileAtomic(join(this.#dir, 'state.json'), [Buffer.from(JSON.stringify({ epoch, state }) + '\n')], { kind: 'snapshot' });
    const old = this.#journalPath(this.#epoch);
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#epoch = epoch;
    this.#fd = openSync(this.#journalPath(epoch), 'w+', 0o600);
    // The snapshot holds what the old journal's unsynced events did.
    this.#synced();
    this.#size = 0;
    this.#bodies.clear();
    rmSync(old, { force: true });
  }

  updateBodies(round: number, agents: string[]): Uint8Array[] {
    const m = this.#bodies.get(round);
    const where = agents.map((a) => {
      const at = m?.get(a);
      if (!at || this.#fd === undefined) throw new IcosflError('STATE_CORRUPT', `no stored update of agent ${a} for round ${round} in ${this.#journalPath(this.#epoch)}`);
      return at;
    });
    // One buffer for the round's bodies (8-byte-aligned views, as the crypto code reads them):
    // a single large allocation goes back to the system once the sum is done, where a thousand
    // 24 KB ones would leave the allocator's heap at its high-water mark.
    const starts: number[] = [];
    let total = 0;
    for (const [, length] of where) {
      starts.push(total);
      total += Math.ceil(length / 8) * 8;
    }
    const all = new Uint8Array(total);
    return where.map(([offset, length], i) => {
      const out = all.subarray(starts[i]!, starts[i]! + length);
      readSync(this.#fd!, out, 0, length, offset);
      return out;
    });
  }

  putAggregate(round: number, bytes: Uint8Array): void {
    writeFileAtomic(this.#aggregatePath(round), [bytes], { kind: 'aggregate' });
  }

  getAggregate(round: number): Uint8Array | undefined {
    const path = this.#aggregatePath(round);
    return existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined;
  }

  release(round: number, keep: readonly number[]): void {
    this.#bodies.delete(round);
    for (const f of readdirSync(join(this.#dir, 'aggregates'))) {
      const m = /^(\d+)\.bin$/.exec(f);
      if (m && !keep.includes(Number(m[1]))) rmSync(join(this.#dir, 'aggregates', f), { force: true });
    }
  }

  close(): void {
    try {
      this.sync();
    } catch (err) {
      this.#log.error({ err }, 'journal sync at close failed');
    }
    this.#synced();
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    if (this.#locked) {
      rmSync(join(this.#dir, 'lock'), { force: true });
      HELD_HERE.delete(resolve(this.#dir));
    }
    this.#locked = false;
  }
}
