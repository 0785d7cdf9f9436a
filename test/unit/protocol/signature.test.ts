import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { decodeFrame, encodeMessage, rejectReason } from '../../../common/protocol/frame.js';
import type { Message } from '../../../common/protocol/messages.js';
import {
  COORDINATOR_SIGNER,
  MESSAGE_LIFETIME_MS,
  NonceCache,
  generateSigningKey,
  parsePublicKey,
  parseSigningKey,
  publicKeyText,
  signBlock,
  signingKeyPem,
  verifyBlock,
  type SignerKey,
} from '../../../common/protocol/signature.js';
import { ACK, ANNOUNCE, EVERY_MESSAGE, GLOBAL, PRESENCE, UPDATE } from './fixtures.js';

// Signed frames (frame.ts signature block, signature.ts rules) on bytes: every message type signs
// and verifies, and each way of tampering, replaying or impersonating is refused with its reason.

const NOW = 1_700_000_000_000;
const coordinator = generateSigningKey();
const a1 = generateSigningKey();
const a2 = generateSigningKey();
const keys = new Map([[COORDINATOR_SIGNER, coordinator], ['a1', a1], [UPDATE.agent, a1], ['a2', a2]]);
const keyOf = (s: string): SignerKey => (keys.has(s) ? { key: keys.get(s)! } : { refused: 'unknown-signer', detail: `${s} is not enrolled` });

function signerOf(m: Message) {
  return 'agent' in m ? { id: m.agent, key: keys.get(m.agent)! } : { id: COORDINATOR_SIGNER, key: coordinator };
}

function signed(m: Message, opts: { signer?: { id: string; key: ReturnType<typeof generateSigningKey> }; now?: number; expiry?: number } = {}): Uint8Array {
  return encodeMessage(m, (frame) => signBlock(m, frame, opts.signer ?? signerOf(m), opts.now ?? NOW, opts.expiry));
}

function check(bytes: Uint8Array, o: { now?: number; replay?: NonceCache; keyOf?: (s: string) => SignerKey } = {}): Message {
  const f = decodeFrame(bytes);
  verifyBlock(f.message, f.signed, f.signature, { keyOf: o.keyOf ?? keyOf, now: o.now ?? NOW, ...(o.replay ? { replay: o.replay } : {}) });
  return f.message;
}

function refused(fn: () => unknown, reason: string): void {
  try {
    fn();
    assert.unreachable(`expected ${reason}`);
  } catch (err) {
    assert.ok(isIcosflError(err, 'PROTOCOL_MALFORMED'), String(err));
    assert.is(rejectReason(err), reason, (err as Error).message);
  }
}

test('every message type signs and verifies; the decoded message is the one sent', () => {
  for (const [name, m] of EVERY_MESSAGE) {
    const got = check(signed(m));
    assert.equal(got, m, name);
  }
});

test('unsigned messages are refused where signatures are required', () => {
  for (const [name, m] of EVERY_MESSAGE) {
    refused(() => check(encodeMessage(m)), 'unsigned');
    assert.ok(decodeFrame(encodeMessage(m)).signature === undefined, name);
  }
});

test('a flipped bit anywhere in the header, body or signature breaks the signature', () => {
  const bytes = signed(UPDATE);
  const f = decodeFrame(bytes);
  const signedLength = f.signed.length;
  // Every byte of the JSON header and a sample of the body, and the signature itself.
  const positions = [...Array.from({ length: signedLength - 16 }, (_, i) => 16 + i).filter((i) => i < 200 || i % 97 === 0), bytes.length - 1, bytes.length - 40];
  let broken = 0;
  for (const at of positions) {
    const copy = bytes.slice();
    copy[at]! ^= 0x01;
    try {
      check(copy);
    } catch (err) {
      if (isIcosflError(err, 'PROTOCOL_MALFORMED')) broken++;
      else throw err;
    }
  }
  assert.is(broken, positions.length);
});

test('a signature by another agent, or by an agent for the coordinator, is refused', () => {
  refused(() => check(signed(UPDATE, { signer: { id: 'a2', key: a2 } })), 'signer-mismatch');
  // a2's key under a1's name: the signature does not verify against a1's enrolled key.
  refused(() => check(signed(UPDATE, { signer: { id: UPDATE.agent, key: a2 } })), 'bad-signature');
  refused(() => check(signed(ANNOUNCE, { signer: { id: 'a1', key: a1 } })), 'signer-mismatch');
  refused(() => check(signed(GLOBAL, { signer: { id: COORDINATOR_SIGNER, key: a1 } })), 'bad-signature');
});

test('unknown and revoked signers are refused with their reason', () => {
  const bytes = signed(ACK);
  refused(() => check(bytes, { keyOf: () => ({ refused: 'unknown-signer', detail: 'a1 is not enrolled' }) }), 'unknown-signer');
  refused(() => check(bytes, { keyOf: () => ({ refused: 'revoked-signer', detail: 'a1 was revoked' }) }), 'revoked-signer');
});

test('expired messages, and messages claiming to live longer than their type may, are refused', () => {
  const bytes = signed(UPDATE);
  assert.ok(check(bytes, { now: NOW + MESSAGE_LIFETIME_MS.update - 1000 }));
  refused(() => check(bytes, { now: NOW + MESSAGE_LIFETIME_MS.update + 10 * 60_000 }), 'expired');
  refused(() => check(signed(UPDATE, { expiry: NOW + 365 * 86400_000 })), 'expired');
  // A retained global stays valid for agents that connect days later.
  assert.ok(check(signed(GLOBAL), { now: NOW + 7 * 86400_000 }));
});

test('an update or ack is taken once (nonce); presence and coordinator messages may repeat', () => {
  const replay = new NonceCache();
  const update = signed(UPDATE);
  check(update, { replay });
  refused(() => check(update, { replay }), 'replayed');
  // A new signature of the same update is a new message (the round state deduplicates it).
  check(signed(UPDATE), { replay });
  const ack = signed(ACK);
  check(ack, { replay });
  refused(() => check(ack, { replay }), 'replayed');
  const presence = signed(PRESENCE);
  check(presence, { replay });
  check(presence, { replay });
  const global = signed(GLOBAL);
  check(global, { replay });
  check(global, { replay });
});

test('nothing moves into another round, phase, session, federation or type: the routing fields are signed', () => {
  const f = decodeFrame(signed(UPDATE));
  const block = f.signature!;
  for (const change of [{ round: UPDATE.round + 1 }, { phase: 'ridge' as const }, { session: UPDATE.session + 1 }, { federation: 'fed-2' }, { samples: UPDATE.samples + 1 }]) {
    const moved = { ...UPDATE, ...change };
    // The same signature block on a frame re-encoded with the changed field.
    const bytes = encodeMessage(moved, () => block);
    refused(() => check(bytes), 'bad-signature');
  }
  refused(() => check(encodeMessage({ ...UPDATE, agent: 'a1' }, () => block)), 'signer-mismatch');
});

test('the nonce cache refuses a signer that floods it instead of forgetting older nonces', () => {
  const cache = new NonceCache(3);
  const n = (i: number) => new Uint8Array(16).fill(i);
  assert.ok(cache.take('a1', n(1), NOW + 1000, NOW));
  assert.ok(cache.take('a1', n(2), NOW + 1000, NOW));
  assert.ok(cache.take('a1', n(3), NOW + 1000, NOW));
  assert.not.ok(cache.take('a1', n(4), NOW + 1000, NOW));
  assert.not.ok(cache.take('a1', n(1), NOW + 1000, NOW));
  // Other signers are unaffected, and expired nonces make room.
  assert.ok(cache.take('a2', n(1), NOW + 1000, NOW));
  assert.ok(cache.take('a1', n(4), NOW + 3000, NOW + 2000));
});

test('key text round trips; malformed keys are refused naming their source', () => {
  const text = publicKeyText(a1);
  assert.match(text, /^ed25519:[A-Za-z0-9+/]{43}=$/);
  assert.is(publicKeyText(parsePublicKey(text, 'x')), text);
  assert.is(publicKeyText(parseSigningKey(signingKeyPem(a1), 'x')), text);
  for (const bad of ['', 'ed25519:', 'rsa:AAAA', `ed25519:${'A'.repeat(42)}==`, text.slice(0, -2)]) {
    try {
      parsePublicKey(bad, 'enrolment of a7');
      assert.unreachable(bad);
    } catch (err) {
      assert.ok(isIcosflError(err, 'CRYPTO_KEY_INVALID'));
      assert.match((err as Error).message, /enrolment of a7/);
    }
  }
  try {
    parseSigningKey('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n', '/etc/k');
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'CRYPTO_KEY_INVALID'));
    assert.match((err as Error).message, /\/etc\/k/);
  }
});

test('a truncated or padded signature block is a framing error, not a crash', () => {
  const bytes = signed(PRESENCE);
  for (const cut of [1, 10, 64, 88]) {
    try {
      decodeFrame(bytes.subarray(0, bytes.length - cut));
      assert.unreachable();
    } catch (err) {
      assert.ok(isIcosflError(err, 'PROTOCOL_MALFORMED'));
    }
  }
  const padded = new Uint8Array(bytes.length + 1);
  padded.set(bytes);
  try {
    decodeFrame(padded);
    assert.unreachable();
  } catch (err) {
    assert.is(rejectReason(err), 'bad-length');
  }
});

test.run();
