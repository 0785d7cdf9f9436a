import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { writeFileAtomic } from '../atomic-file.js';
import { IcosflError } from '../errors.js';
import { generateSigningKey, parsePublicKey, parseSigningKey, publicKeyText, signingKeyPem } from '../protocol/signature.js';

/**
 * Ed25519 message-signing key files (common/protocol/signature.ts signs and verifies): a private
 * key as PKCS#8 PEM, mode 0600, refused when group or others may read it (as the CKKS bundle is);
 * a public key as one line `ed25519:<base64>`, which operators copy and paste to enrol or pin.
 */
export const COORDINATOR_SIGNING_KEY_FILE = 'coordinator-signing.key';
export const COORDINATOR_PUBLIC_KEY_FILE = 'coordinator-signing.pub';

function unreadable(path: string, err: unknown): IcosflError {
  const code = (err as NodeJS.ErrnoException).code;
  return new IcosflError('CRYPTO_KEY_INVALID', `${path}: cannot read the signing key (${code ?? String(err)})`, { cause: err });
}

export function loadSigningKey(path: string): KeyObject {
  let mode: number;
  let pem: string;
  try {
    mode = statSync(path).mode;
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw unreadable(path, err);
  }
  if ((mode & 0o077) !== 0) throw new IcosflError('CRYPTO_KEY_INVALID', `${path}: the signing key is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return parseSigningKey(pem, path);
}

/** Loads the key at `path`, creating it (mode 0600) first when there is none; `created` says which. */
export function loadOrCreateSigningKey(path: string): { key: KeyObject; created: boolean } {
  if (existsSync(path)) return { key: loadSigningKey(path), created: false };
  const key = generateSigningKey();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, [Buffer.from(signingKeyPem(key))], { kind: 'keys', mode: 0o600, exclusive: true });
  return { key, created: true };
}

export function loadPublicKeyFile(path: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new IcosflError('CRYPTO_KEY_INVALID', `${path}: cannot read the public key (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  return parsePublicKey(text, path);
}

/** Writes a new key pair as DIR/<name>.key (0600) and DIR/<name>.pub (0644); never overwrites. */
export function writeSigningKeyPair(keyPath: string, pubPath: string): KeyObject {
  for (const p of [keyPath, pubPath]) if (existsSync(p)) throw new IcosflError('CRYPTO_KEY_INVALID', `${p} already exists; signing keys are never overwritten`);
  const key = generateSigningKey();
  mkdirSync(dirname(keyPath), { recursive: true, mode: 0o700 });
  writeFileAtomic(keyPath, [Buffer.from(signingKeyPem(key))], { kind: 'keys', mode: 0o600, exclusive: true });
  writeFileAtomic(pubPath, [Buffer.from(publicKeyText(key) + '\n')], { kind: 'keys', mode: 0o644, exclusive: true });
  return key;
}
