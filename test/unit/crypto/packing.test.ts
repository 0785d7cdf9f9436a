import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { addPacked47, packFromFloat64, packFromUint64, packedBytes, subPacked, unpackToUint64 } from '../../../common/crypto/packing.js';

const N = 64;
const Q = 140737488273409; // the 47-bit prime SEAL picks for N=4096
const HI = 15;

function randomResidues(n: number): bigint[] {
  return Array.from({ length: n }, () => BigInt(Math.floor(Math.random() * Q)));
}
function toUint64Bytes(values: bigint[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setBigUint64(i * 8, x, true));
  return out;
}
function fromUint64Bytes(bytes: Uint8Array, n: number): bigint[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  return Array.from({ length: n }, (_, i) => v.getBigUint64(i * 8, true));
}

test('47-bit packing is exactly N·47/8 bytes and round-trips SEAL uint64 residues, at any offset', () => {
  assert.is(packedBytes(4096, HI), (4096 * 47) / 8);
  const values = randomResidues(N);
  values[0] = 0n;
  values[1] = BigInt(Q - 1);
  const packed = new Uint8Array(3 + packedBytes(N, HI));
  packFromUint64(toUint64Bytes(values), 0, N, HI, packed, 3);
  const back = new Uint8Array(8 + N * 8);
  unpackToUint64(packed, 3, N, HI, Q, back, 8);
  assert.equal(fromUint64Bytes(back.subarray(8), N), values);
});

test('addPacked47 adds residues exactly (lazily, unreduced) and matches BigInt arithmetic mod q', () => {
  const frames = Array.from({ length: 40 }, () => randomResidues(N));
  const acc = new Float64Array(N);
  for (const f of frames) {
    const packed = new Uint8Array(packedBytes(N, HI));
    packFromUint64(toUint64Bytes(f), 0, N, HI, packed, 0);
    assert.is(addPacked47(packed, 0, N, Q, acc, 0), -1);
  }
  for (let i = 0; i < N; i++) {
    const expected = frames.reduce((s, f) => s + f[i]!, 0n) % BigInt(Q);
    assert.is(BigInt(acc[i]! % Q), expected, `residue ${i}`);
  }
  const repacked = new Uint8Array(packedBytes(N, HI));
  packFromFloat64(acc.map((x) => x % Q), 0, N, HI, repacked, 0);
  const back = new Uint8Array(N * 8);
  unpackToUint64(repacked, 0, N, HI, Q, back, 0);
  assert.equal(fromUint64Bytes(back, N), Array.from(acc, (x) => BigInt(x % Q)));
});

test('addPacked47 reads an unaligned buffer (a pooled Node Buffer) the same as an aligned one', () => {
  const values = randomResidues(N);
  const aligned = new Uint8Array(packedBytes(N, HI));
  packFromUint64(toUint64Bytes(values), 0, N, HI, aligned, 0);
  const backing = new Uint8Array(aligned.length + 3);
  backing.set(aligned, 3);
  const unaligned = backing.subarray(3);
  const a = new Float64Array(N);
  const b = new Float64Array(N);
  assert.is(addPacked47(aligned, 0, N, Q, a, 0), -1);
  assert.is(addPacked47(unaligned, 0, N, Q, b, 0), -1);
  assert.equal(Array.from(b), Array.from(a));
  assert.equal(Array.from(a, (x) => BigInt(x)), values);
});

test('a residue ≥ q is reported by index, and subPacked takes back exactly what was added', () => {
  const values = randomResidues(N);
  values[37] = BigInt(Q); // not a valid residue
  const packed = new Uint8Array(packedBytes(N, HI));
  packFromUint64(toUint64Bytes(values), 0, N, HI, packed, 0);
  const acc = Float64Array.from({ length: N }, () => Math.floor(Math.random() * Q));
  const before = acc.slice();
  const bad = addPacked47(packed, 0, N, Q, acc, 0);
  assert.is(bad, 37);
  subPacked(packed, 0, N, HI, acc, 0, bad);
  assert.equal(Array.from(acc), Array.from(before));
  const out = new Uint8Array(N * 8);
  try {
    unpackToUint64(packed, 0, N, HI, Q, out, 0);
    assert.unreachable('unpack accepted a residue ≥ q');
  } catch (err) {
    assert.ok(isIcosflError(err, 'CRYPTO_MALFORMED_UPDATE'), String(err));
  }
});

test.run();
