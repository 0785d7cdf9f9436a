import { statSync } from 'node:fs';
import { AgentCipher, loadAgentBundle, type AgentBundle } from '../../common/crypto/index.js';
import type { Logger } from '../../common/log.js';
import { ckksCodec, type AgentCodec, type AgentKeyring } from './codec.js';

/**
 * The agent's CKKS bundles as files: federation.keys (the current epoch) and federation.next_keys
 * (the next one, installed by the operator during a rotation), each re-read when its mtime,
 * ctime (a chmod), size or inode changes (poll(), from the daemon's timer). What the files hold
 * is what the agent holds: presence lists their key ids, and a round is answered with the
 * bundle its announcement names. A bundle of another federation, or one that does not load
 * (mode, corrupt), is refused and logged, and the file counts as holding nothing.
 * SEAL contexts of keys no longer held are kept until dispose(): a session may still be using one.
 */
export class AgentKeyFiles implements AgentKeyring {
  readonly #codecs = new Map<string, AgentCodec>();
  /** path → stamp and the key id it holds now (null: absent or refused). */
  readonly #files = new Map<string, { stamp: string; keyId: string | null; epoch: number | null }>();

  private constructor(
    readonly paths: readonly string[],
    readonly federation: string,
    readonly logger: Logger,
  ) {}

  /** Loads the files; the first (federation.keys) is already validated by the caller and must hold a key. */
  static async open(current: { path: string; bundle: AgentBundle }, nextPath: string, logger: Logger): Promise<AgentKeyFiles> {
    const ring = new AgentKeyFiles([current.path, nextPath], current.bundle.params.federationId, logger);
    await ring.#take(current.path, current.bundle, ring.#stampOf(current.path) ?? '');
    await ring.poll();
    return ring;
  }

  #stampOf(path: string): string | undefined {
    try {
      const st = statSync(path);
      return `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}`;
    } catch {
      return undefined;
    }
  }

  async #take(path: string, bundle: AgentBundle, stamp: string): Promise<void> {
    const id = bundle.params.keyId;
    if (!this.#codecs.has(id)) this.#codecs.set(id, ckksCodec(await AgentCipher.create(bundle)));
    this.#files.set(path, { stamp, keyId: id, epoch: bundle.params.epoch });
  }

  /** Re-reads changed files; true when the keys held changed. */
  async poll(): Promise<boolean> {
    const before = this.keyIds().join();
    const security = this.logger.child({ component: 'security' });
    for (const path of this.paths) {
      const stamp = this.#stampOf(path);
      const old = this.#files.get(path);
      if (stamp === undefined) {
        if (old?.keyId) security.info({ event: 'key-removed', file: path, keyId: old.keyId }, 'key bundle removed');
        this.#files.delete(path);
        continue;
      }
      if (old?.stamp === stamp) continue;
      let bundle: AgentBundle;
      try {
        bundle = loadAgentBundle(path);
        if (bundle.params.federationId !== this.federation) throw new Error(`it belongs to federation '${bundle.params.federationId}', this agent's is '${this.federation}'`);
      } catch (err) {
        security.error({ event: 'key-refused', file: path, err: (err as Error).message }, 'key bundle refused');
        this.#files.set(path, { stamp, keyId: null, epoch: null });
        continue;
      }
      await this.#take(path, bundle, stamp);
      security.info({ event: 'key-loaded', file: path, epoch: bundle.params.epoch, keyId: bundle.params.keyId }, 'key bundle loaded');
    }
    return this.keyIds().join() !== before;
  }

  forKey(keyId: string): AgentCodec | undefined {
    return this.keyIds().includes(keyId) ? this.#codecs.get(keyId) : undefined;
  }

  keyIds(): string[] {
    const ids = new Set<string>();
    for (const f of this.#files.values()) if (f.keyId) ids.add(f.keyId);
    return [...ids].sort();
  }

  /** The epochs held (for status). */
  held(): { file: string; keyId: string | null; epoch: number | null }[] {
    return this.paths.map((file) => ({ file, keyId: this.#files.get(file)?.keyId ?? null, epoch: this.#files.get(file)?.epoch ?? null }));
  }

  dispose(): void {
    for (const c of this.#codecs.values()) c.dispose();
    this.#codecs.clear();
  }
}
