import { statSync } from 'node:fs';
import { loadCoordinatorBundle, type CoordinatorBundle } from '../common/crypto/bundle.js';
import type { Logger } from '../common/log.js';
import { ckksStrategy, type AggregationStrategy } from './strategy/aggregation.js';

/**
 * The coordinator's CKKS bundles by key id: the configured one (coordinator.keys) and the next
 * epoch's (coordinator.next_keys), which `keys rotate` writes and the operator installs while
 * the service runs. That file is re-read when its mtime, ctime, size or inode changes (poll(),
 * once a second from the service); a bundle of another federation or other
 * parameters, or an epoch not after the configured one, is refused and logged. Each round is
 * checked and summed with the strategy of its own key (RoundRunner strategyFor).
 */
export class CoordinatorKeyRing {
  readonly #bundles = new Map<string, CoordinatorBundle>();
  readonly #strategies = new Map<string, AggregationStrategy>();
  readonly #current: CoordinatorBundle;
  #stamp = '';

  constructor(
    current: CoordinatorBundle,
    readonly nextPath: string,
    readonly logger: Logger,
  ) {
    this.#current = current;
    this.#add(current);
  }

  #add(b: CoordinatorBundle): void {
    this.#bundles.set(b.params.keyId, b);
    this.#strategies.set(b.params.keyId, ckksStrategy(b));
  }

  strategyFor(keyId: string): AggregationStrategy | undefined {
    return this.#strategies.get(keyId);
  }

  bundleFor(keyId: string): CoordinatorBundle | undefined {
    return this.#bundles.get(keyId);
  }

  has(keyId: string): boolean {
    return this.#bundles.has(keyId);
  }

  /** The epochs held, oldest first. */
  epochs(): { epoch: number; keyId: string }[] {
    return [...this.#bundles.values()].map((b) => ({ epoch: b.params.epoch, keyId: b.params.keyId })).sort((a, b) => a.epoch - b.epoch);
  }

  /** Why a next-epoch bundle cannot pair with the configured one, or undefined. */
  #mismatch(next: CoordinatorBundle): string | undefined {
    const a = this.#current.params;
    const b = next.params;
    if (b.federationId !== a.federationId) return `it belongs to federation '${b.federationId}', this one is '${a.federationId}'`;
    if (b.coeffModulus !== a.coeffModulus || b.maxAbsWeight !== a.maxAbsWeight || b.maxRoundSamples !== a.maxRoundSamples) return 'its CKKS parameters differ from coordinator.keys (keys rotate keeps them)';
    if (b.epoch <= a.epoch && b.keyId !== a.keyId) return `its key epoch ${b.epoch} is not after coordinator.keys' ${a.epoch}`;
    return undefined;
  }

  /**
   * Reads coordinator.next_keys if it changed; the new bundle when one was taken. Errors are
   * logged (the service keeps running with what it has), never thrown.
   */
  poll(): CoordinatorBundle | undefined {
    let stamp: string;
    try {
      const st = statSync(this.nextPath);
      stamp = `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}`;
    } catch {
      this.#stamp = '';
      return undefined; // absent: no rotation under way
    }
    if (stamp === this.#stamp) return undefined;
    this.#stamp = stamp;
    const security = this.logger.child({ component: 'security' });
    let next: CoordinatorBundle;
    try {
      next = loadCoordinatorBundle(this.nextPath);
    } catch (err) {
      security.error({ event: 'key-refused', file: this.nextPath, err }, 'coordinator.next_keys refused');
      return undefined;
    }
    const why = this.#mismatch(next);
    if (why) {
      security.error({ event: 'key-refused', file: this.nextPath, epoch: next.params.epoch, keyId: next.params.keyId }, `coordinator.next_keys refused: ${why}`);
      return undefined;
    }
    if (this.#bundles.has(next.params.keyId)) return next;
    this.#add(next);
    security.info({ event: 'key-loaded', file: this.nextPath, epoch: next.params.epoch, keyId: next.params.keyId }, 'next key epoch loaded');
    return next;
  }
}
