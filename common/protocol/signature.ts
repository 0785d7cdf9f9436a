import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { IcosflError } from '../errors.js';
import { PROTOCOL_VERSION, type Message } from './messages.js';

/**
 * Signed messages (Ed25519, node:crypto). Each agent holds its own signing key, enrolled at the
 * coordinator by its public key; the coordinator signs announcements and globals with a key the
 * agents pin. The signature travels in the frame's signature block (frame.ts) and covers, as one
 * canonical string, everything that could be replayed elsewhere:
 *
 *   "icosfl-signature-v1\n" + JSON [protocol version, federation, type, session, round, phase,
 *                                    sender, recipient, nonce, expiry, SHA-256 of the frame]
 *
 * so a message cannot be moved into another federation, round, phase or direction, and the frame
 * hash binds the header and the body. Flower signs only a timestamp, NVFlare an identity token.
 */
export const SIGNATURE_DOMAIN = 'icosfl-signature-v1\n';
export const SIGNATURE_BYTES = 64;
export const NONCE_BYTES = 16;
/** The coordinator's signer id (agent ids are the agents' own). */
export const COORDINATOR_SIGNER = 'coordinator';
/** Who a message is for: the coordinator's go to every agent, the agents' to the coordinator. */
export const RECIPIENT_AGENTS = '*';

/**
 * How long a signed message stays valid, by type. Coordinator messages are retained for agents
 * that connect later (the global until the next one, which may be days); agent messages answer
 * one round, except the presence will, which the broker may publish long after it was signed.
 * Updates and acks are also checked against a nonce cache: a copy is taken once. Announcements,
 * globals and presence are statements of state that receivers apply idempotently (a retained
 * message is redelivered on every reconnect by design), and their round and `at` fields order them.
 */
export const MESSAGE_LIFETIME_MS: Readonly<Record<Message['type'], number>> = {
  announce: 24 * 3600_000,
  global: 30 * 24 * 3600_000,
  update: 15 * 60_000,
  ack: 15 * 60_000,
  presence: 30 * 24 * 3600_000,
  partial: 15 * 60_000,
};
export const REPLAY_CHECKED: ReadonlySet<Message['type']> = new Set(['update', 'ack', 'partial']);
/** Clock difference between sender and receiver tolerated on top of a lifetime. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** What frame.ts carries after the body of a signed message. */
export interface SignatureBlock {
  signer: string;
  nonce: Uint8Array;
  /** ms since the epoch: the receiver refuses the message after it. */
  expiry: number;
  signature: Uint8Array;
}

export interface Signer {
  id: string;
  key: KeyObject;
}

/** The reasons a signed-message check refuses (frame.ts's RejectReason includes them). */
export type SignatureRejectReason = 'unsigned' | 'unknown-signer' | 'revoked-signer' | 'signer-mismatch' | 'bad-signature' | 'expired' | 'replayed';

export type SignerKey = { key: KeyObject } | { refused: 'unknown-signer' | 'revoked-signer'; detail: string };

export interface VerifyOptions {
  /** The public key of a signer id (enrolled agents, or the pinned coordinator key). */
  keyOf(signer: string): SignerKey;
  now: number;
  /** Remembers nonces until their expiry so the same update or ack is taken once (REPLAY_CHECKED). */
  replay?: NonceCache;
}

/** The sender a message must be signed by: its agent, or the coordinator. */
export function expectedSigner(message: Message): string {
  return 'agent' in message ? message.agent : COORDINATOR_SIGNER;
}

function recipientOf(message: Message): string {
  // A partial sum goes from an aggregator worker to the round leader, both signing as the coordinator.
  return 'agent' in message || message.type === 'partial' ? COORDINATOR_SIGNER : RECIPIENT_AGENTS;
}

/** The exact bytes signed for `message` framed as `frame` (the frame without its signature block). */
export function signedBytes(message: Message, frame: Uint8Array, block: Pick<SignatureBlock, 'signer' | 'nonce' | 'expiry'>): Buffer {
  const m = message as Partial<{ session: number; round: number; phase: string }>;
  const fields = [
    PROTOCOL_VERSION,
    message.federation,
    message.type,
    m.session ?? 0,
    m.round ?? 0,
    m.phase ?? '',
    block.signer,
    recipientOf(message),
    Buffer.from(block.nonce).toString('hex'),
    block.expiry,
    createHash('sha256').update(frame).digest('hex'),
  ];
  return Buffer.from(SIGNATURE_DOMAIN + JSON.stringify(fields), 'utf8');
}

/** Signs `message` framed as `frame`, valid for its type's lifetime from `now`. */
export function signBlock(message: Message, frame: Uint8Array, signer: Signer, now: number, expiry = now + MESSAGE_LIFETIME_MS[message.type]): SignatureBlock {
  const block = { signer: signer.id, nonce: new Uint8Array(randomBytes(NONCE_BYTES)), expiry };
  return { ...block, signature: new Uint8Array(sign(null, signedBytes(message, frame, block), signer.key)) };
}

function refuse(reason: SignatureRejectReason, message: string, details: Record<string, unknown> = {}): IcosflError {
  return new IcosflError('PROTOCOL_MALFORMED', message, { details: { reason, ...details } });
}

/**
 * Checks a decoded message's signature block: present, by the message's own sender, a known and
 * unrevoked key, a valid signature, not expired, not too far in the future, not seen before.
 * Throws PROTOCOL_MALFORMED with a SignatureRejectReason.
 */
export function verifyBlock(message: Message, frame: Uint8Array, block: SignatureBlock | undefined, o: VerifyOptions): void {
  const sender = expectedSigner(message);
  if (!block) throw refuse('unsigned', `an unsigned ${message.type} from ${sender}; this federation requires signed messages`);
  if (block.signer !== sender) throw refuse('signer-mismatch', `a ${message.type} from ${sender} is signed by ${block.signer}`);
  const found = o.keyOf(block.signer);
  if ('refused' in found) throw refuse(found.refused, found.detail);
  if (!verify(null, signedBytes(message, frame, block), found.key, block.signature)) throw refuse('bad-signature', `the signature of a ${message.type} from ${sender} does not verify`);
  if (block.expiry + CLOCK_SKEW_MS <= o.now) throw refuse('expired', `a ${message.type} from ${sender} expired ${new Date(block.expiry).toISOString()}`);
  // Bounds how long a nonce must be remembered, so the replay cache stays bounded too.
  const lifetime = MESSAGE_LIFETIME_MS[message.type];
  if (block.expiry > o.now + lifetime + CLOCK_SKEW_MS) throw refuse('expired', `a ${message.type} from ${sender} claims to stay valid until ${new Date(block.expiry).toISOString()}, beyond the ${lifetime / 1000} s a ${message.type} may live`);
  if (o.replay && REPLAY_CHECKED.has(message.type) && !o.replay.take(block.signer, block.nonce, block.expiry + CLOCK_SKEW_MS, o.now)) {
    throw refuse('replayed', `a ${message.type} from ${sender} was replayed (nonce seen before)`);
  }
}

/**
 * Nonces seen, per signer, kept until their expiry (verifyBlock bounds expiry to now + the
 * lifetime, so the cache holds at most what arrives in one lifetime; `maxPerSigner` caps a
 * signer that floods it, refusing its excess rather than forgetting older nonces).
 */
export class NonceCache {
  readonly #seen = new Map<string, Map<string, number>>();
  readonly #maxPerSigner: number;

  constructor(maxPerSigner = 4096) {
    this.#maxPerSigner = maxPerSigner;
  }

  /** True the first time (signer, nonce) is seen before its expiry. */
  take(signer: string, nonce: Uint8Array, expiry: number, now: number): boolean {
    let seen = this.#seen.get(signer);
    if (!seen) this.#seen.set(signer, (seen = new Map()));
    const key = Buffer.from(nonce).toString('hex');
    if (seen.has(key)) return false;
    if (seen.size >= this.#maxPerSigner) {
      for (const [k, e] of seen) if (e <= now) seen.delete(k);
      if (seen.size >= this.#maxPerSigner) return false;
    }
    seen.set(key, expiry);
    return true;
  }

  get size(): number {
    let n = 0;
    for (const s of this.#seen.values()) n += s.size;
    return n;
  }
}

/** A signing key's public half as text: `ed25519:` + base64 of the raw 32 bytes. */
export function publicKeyText(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return `ed25519:${der.subarray(der.length - 32).toString('base64')}`;
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Parses `ed25519:<base64>`; CRYPTO_KEY_INVALID (naming `source`) for anything else. */
export function parsePublicKey(text: string, source: string): KeyObject {
  const m = /^ed25519:([A-Za-z0-9+/]{43}=)$/.exec(text.trim());
  if (!m) throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: not an Ed25519 public key (expected "ed25519:" and 44 base64 characters)`);
  const raw = Buffer.from(m[1]!, 'base64');
  if (raw.length !== 32) throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: an Ed25519 public key is 32 bytes, this one ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function generateSigningKey(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

export function signingKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Parses a PKCS#8 PEM Ed25519 private key; CRYPTO_KEY_INVALID naming `source` otherwise. */
export function parseSigningKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: a ${key.asymmetricKeyType} key; message signing takes Ed25519`);
  return key;
}
