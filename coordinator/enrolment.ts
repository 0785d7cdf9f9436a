import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { writeFileAtomic } from '../common/atomic-file.js';
import { IcosflError } from '../common/errors.js';
import { ID_PATTERN } from '../common/protocol/messages.js';
import { parsePublicKey, type SignerKey } from '../common/protocol/signature.js';

/**
 * The agents enrolled at this coordinator: id → Ed25519 public key, enrolment and revocation
 * times. `icosfl-coordinator agents enroll|revoke|list` edit it (atomic writes); the running
 * service re-reads it when it changes, so enrolling or revoking needs no restart. A revoked
 * agent stays listed (with when), so it cannot be re-enrolled by mistake under the same id
 * without `--force`.
 */
const FORMAT = 'icosfl-enrolment-v1';

const entrySchema = z
  .object({
    key: z.string(),
    enrolledAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .strict();
const fileSchema = z.object({ format: z.literal(FORMAT), agents: z.record(z.string().regex(ID_PATTERN), entrySchema) }).strict();

export type EnrolledAgent = z.infer<typeof entrySchema> & { id: string };

export function readEnrolment(path: string): Map<string, EnrolledAgent> {
  if (!existsSync(path)) return new Map();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new IcosflError('STATE_CORRUPT', `${path}: the enrolment file is not JSON (${(err as Error).message}); restore it from a backup`, { cause: err });
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new IcosflError('STATE_CORRUPT', `${path}: ${issue.path.join('.') || '(root)'}: ${issue.message} (not an icosfl enrolment file)`);
  }
  const out = new Map<string, EnrolledAgent>();
  for (const [id, e] of Object.entries(parsed.data.agents)) {
    parsePublicKey(e.key, `${path}: agent ${id}`);
    out.set(id, { id, ...e });
  }
  return out;
}

function write(path: string, agents: Map<string, EnrolledAgent>): void {
  const obj = { format: FORMAT, agents: Object.fromEntries([...agents].map(([id, { key, enrolledAt, revokedAt }]) => [id, { key, enrolledAt, revokedAt }])) };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, [Buffer.from(JSON.stringify(obj, null, 2) + '\n')], { kind: 'keys', mode: 0o644 });
}

export function enrollAgent(path: string, id: string, keyText: string, opts: { force?: boolean; now?: Date } = {}): EnrolledAgent {
  if (!ID_PATTERN.test(id)) throw new RangeError(`agent id '${id}' must be 1–64 of [A-Za-z0-9._-]`);
  parsePublicKey(keyText, `the public key of ${id}`);
  const agents = readEnrolment(path);
  const old = agents.get(id);
  if (old && !opts.force) {
    throw new IcosflError('CONFIG_INVALID', old.revokedAt ? `agent ${id} was revoked at ${old.revokedAt}; enrol it again with --force` : `agent ${id} is already enrolled (with key ${old.key}); use --force to replace its key`);
  }
  const entry = { id, key: keyText.trim(), enrolledAt: (opts.now ?? new Date()).toISOString(), revokedAt: null };
  agents.set(id, entry);
  write(path, agents);
  return entry;
}

export function revokeAgent(path: string, id: string, now = new Date()): EnrolledAgent {
  const agents = readEnrolment(path);
  const old = agents.get(id);
  if (!old) throw new IcosflError('CONFIG_INVALID', `agent ${id} is not enrolled (${path})`);
  if (old.revokedAt) return old;
  const entry = { ...old, revokedAt: now.toISOString() };
  agents.set(id, entry);
  write(path, agents);
  return entry;
}

/**
 * What the service verifies agents' signatures with: the enrolment file, re-read when its
 * modification time or size changes (checked at most once a second, so a flood of messages
 * costs one stat a second). A file that became unreadable keeps the last good list, logged.
 */
export class EnrolmentRegistry {
  readonly #path: string;
  readonly #onError: (err: Error) => void;
  readonly #onChange: ((change: { enrolled: string[]; revoked: string[]; removed: string[] }) => void) | undefined;
  #keys = new Map<string, { key: KeyObject; revokedAt: string | null }>();
  #stamp = '';
  #checkedAt = -Infinity;

  constructor(path: string, onError: (err: Error) => void, onChange?: (change: { enrolled: string[]; revoked: string[]; removed: string[] }) => void) {
    this.#path = path;
    this.#onError = onError;
    this.#onChange = onChange;
    this.#reload(true);
  }

  #reload(strict: boolean): void {
    let stamp = 'absent';
    try {
      const st = statSync(this.#path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      // absent: no agent enrolled
    }
    if (stamp === this.#stamp) return;
    try {
      const next = new Map<string, { key: KeyObject; revokedAt: string | null }>();
      for (const [id, e] of readEnrolment(this.#path)) next.set(id, { key: parsePublicKey(e.key, id), revokedAt: e.revokedAt });
      const before = this.#keys;
      this.#keys = next;
      const first = this.#stamp === '';
      this.#stamp = stamp;
      if (!first && this.#onChange) {
        // What an operator did since the last read: newly enrolled (or re-keyed), revoked, removed.
        const enrolled = [...next].filter(([id, e]) => !e.revokedAt && (!before.has(id) || before.get(id)!.revokedAt !== null || !before.get(id)!.key.equals(e.key))).map(([id]) => id);
        const revoked = [...next].filter(([id, e]) => e.revokedAt && !before.get(id)?.revokedAt).map(([id]) => id);
        const removed = [...before.keys()].filter((id) => !next.has(id));
        if (enrolled.length + revoked.length + removed.length > 0) this.#onChange({ enrolled, revoked, removed });
      }
    } catch (err) {
      if (strict) throw err;
      this.#onError(err as Error);
      this.#stamp = stamp;
    }
  }

  get size(): number {
    return this.#keys.size;
  }

  keyOf(signer: string, now = Date.now()): SignerKey {
    if (now - this.#checkedAt >= 1000) {
      this.#checkedAt = now;
      this.#reload(false);
    }
    const e = this.#keys.get(signer);
    if (!e) return { refused: 'unknown-signer', detail: `agent ${signer} is not enrolled (icosfl-coordinator agents enroll ${signer} KEY)` };
    if (e.revokedAt) return { refused: 'revoked-signer', detail: `agent ${signer} was revoked at ${e.revokedAt}` };
    return { key: e.key };
  }
}
