import { IcosflError, isIcosflError } from '../common/errors.js';
import { outputError, isSystemError } from '../common/system-errors.js';
import type { Logger } from '../common/log.js';
import { FileJournal, type JournalLoad, type RoundJournal } from './round/journal.js';
import type { CoordinatorState } from './round/state.js';

/**
 * The state directory's journal, loaded (and locked) before anything else starts: a second
 * coordinator on the same directory then fails with COORDINATOR_BUSY before it binds a broker
 * port or a control socket, and a state of another federation is refused before the runner
 * would throw a plain Error about it. The runner's own load() gets what was loaded here.
 */
export class PreloadedJournal implements RoundJournal {
  readonly #inner: FileJournal;
  #loaded: JournalLoad | undefined;

  constructor(dir: string, logger: Logger) {
    try {
      this.#inner = new FileJournal(dir, logger);
      this.#loaded = this.#inner.load();
    } catch (err) {
      // A state directory that cannot be created is a path or permission problem, not corrupt state.
      const cause = isIcosflError(err, 'STATE_CORRUPT') ? err.cause : undefined;
      if (isSystemError(cause) && cause.syscall === 'mkdir') throw outputError(dir, cause, 'coordinator.state_dir', 'run as the service user or set [coordinator] state_dir to a writable directory');
      throw err;
    }
  }

  /** The snapshot's federation, or undefined for a fresh directory. */
  get federation(): string | undefined {
    return this.#loaded?.snapshot?.federation;
  }

  /** Refuses a state directory that belongs to another federation (CONFIG_INVALID names both). */
  checkFederation(federation: string, stateDir: string): void {
    const owner = this.federation;
    if (owner !== undefined && owner !== federation) {
      throw new IcosflError(
        'CONFIG_INVALID',
        `invalid configuration: coordinator.state_dir ${stateDir} holds the rounds of federation '${owner}', this coordinator runs '${federation}'; use another state_dir for another federation`,
        { details: { problems: [{ key: 'coordinator.state_dir', source: stateDir, message: `belongs to federation '${owner}'` }] } },
      );
    }
  }

  load(): JournalLoad {
    const loaded = this.#loaded;
    if (!loaded) throw new Error('PreloadedJournal.load: loaded once already');
    this.#loaded = undefined;
    return loaded;
  }

  append(...a: Parameters<RoundJournal['append']>): void {
    this.#inner.append(...a);
  }

  sync(): void {
    this.#inner.sync();
  }

  checkpoint(state: CoordinatorState): void {
    this.#inner.checkpoint(state);
  }

  updateBodies(round: number, agents: string[]): Uint8Array[] {
    return this.#inner.updateBodies(round, agents);
  }

  putAggregate(round: number, bytes: Uint8Array): void {
    this.#inner.putAggregate(round, bytes);
  }

  getAggregate(round: number): Uint8Array | undefined {
    return this.#inner.getAggregate(round);
  }

  release(round: number, keep: readonly number[]): void {
    this.#inner.release(round, keep);
  }

  /** Closes the journal file and removes the lock. */
  close(): void {
    this.#inner.close();
  }
}
