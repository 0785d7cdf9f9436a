import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limbTable, mulAddConst, sqrtMinusOne } from '../../../common/crypto/complex-slots.js';

const Q = 140737488273409; // SEAL's 47-bit prime for N=4096
const N = 256;

function residues(n: number): bigint[] {
  const out = Array.from({ length: n }, () => BigInt(Math.floor(Math.random() * Q)));
  out[0] = 0n;
  out[1] = BigInt(Q - 1);
  return out;
}
function toBytes(values: bigint[], off: number): Uint8Array {
  const b = new Uint8Array(off + values.length * 8);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setBigUint64(off + i * 8, x, true));
  return b;
}
function fromBytes(b: Uint8Array, off: number, n: number): bigint[] {
  const v = new DataView(b.buffer, b.byteOffset);
  return Array.from({ length: n }, (_, i) => v.getBigUint64(off + i * 8, true));
}

test('sqrtMinusOne gives the two square roots of -1 mod q', () => {
  const [a, b] = sqrtMinusOne(Q);
  const q = BigInt(Q);
  assert.is((BigInt(a) * BigInt(a)) % q, q - 1n);
  assert.is(BigInt(a) + BigInt(b), q);
});

test('mulAddConst = a + (±c)·b mod q exactly (BigInt reference), + in the lower half, − in the upper', () => {
  const [c] = sqrtMinusOne(Q);
  const a = residues(N);
  const b = residues(N);
  const OFF = 88;
  const dst = toBytes(a, OFF); // aliasing dst = a, as the encoder does
  mulAddConst(dst, dst, toBytes(b, OFF), OFF, N, limbTable(c, Q), Q);
  const q = BigInt(Q);
  const expected = a.map((x, j) => {
    const p = (BigInt(c) * b[j]!) % q;
    return (x + (j < N / 2 ? p : (q - p) % q)) % q;
  });
  assert.equal(fromBytes(dst, OFF, N), expected);
});

test('multiplying by i then by -i gives back the residues', () => {
  const [i, minusI] = sqrtMinusOne(Q);
  const b = residues(N);
  const bytes = toBytes(b, 0);
  mulAddConst(bytes, undefined, bytes, 0, N, limbTable(i, Q), Q);
  mulAddConst(bytes, undefined, bytes, 0, N, limbTable(minusI, Q), Q);
  assert.equal(fromBytes(bytes, 0, N), b);
});

test('limbTable refuses a modulus it cannot reduce exactly', () => {
  assert.throws(() => limbTable(3, 2 ** 46 + 1), (e: unknown) => e instanceof RangeError && /within 2\^36/.test((e as Error).message));
});

test.run();
