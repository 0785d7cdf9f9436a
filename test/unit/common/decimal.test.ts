import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLOAT32_MAX, parseDecimal } from '../../../common/decimal.js';

const value = (text: string, range?: 'float32' | 'float64') => {
  const r = parseDecimal(text, range);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.reason}`);
  return r.ok ? r.value : NaN;
};
const reason = (text: string, range?: 'float32' | 'float64') => {
  const r = parseDecimal(text, range);
  assert.not.ok(r.ok, `'${text}' should be refused, got ${r.ok ? r.value : ''}`);
  return r.ok ? '' : r.reason;
};

test('plain decimal notation reads as written', () => {
  assert.is(value('12.5'), 12.5);
  assert.is(value(' -3 '), -3);
  assert.is(value('+.5'), 0.5);
  assert.is(value('7.'), 7);
  assert.is(value('007'), 7);
  assert.is(value('1e3'), 1000);
  assert.is(value('2.5E-3'), 0.0025);
  assert.is(value('0e400'), 0);
  assert.is(value(String(FLOAT32_MAX)), FLOAT32_MAX);
  assert.is(value('1e300', 'float64'), 1e300);
});

test("what Number() would reinterpret is refused, each with its reason", () => {
  // Number('0x10') = 16, Number('') = 0, Number(' ') = 0, Number('1e400') = Infinity.
  for (const t of ['0x10', '-0X1f', '0b101', '0o17']) assert.match(reason(t), /hexadecimal, binary or octal prefix/);
  for (const t of ['', '   ']) assert.is(reason(t), 'is empty');
  for (const t of ['NaN', 'nan', 'inf', '+Infinity', '-INF']) assert.is(reason(t), 'is not a finite number');
  for (const t of ['1e400', '3.5e38', '-3.5e38']) assert.match(reason(t), /beyond the float32 range \(±3\.40e\+38\)/);
  assert.match(reason('1e400', 'float64'), /beyond the float64 range/);
  assert.match(reason('1e-46'), /too close to 0 for float32 and would be stored as 0/);
  assert.match(reason('1e-400', 'float64'), /too close to 0 for float64/);
  for (const t of ['1,000', '12_345', "1'000", '1 000', '1\u00a0000.5', '-1,234,567.0']) assert.match(reason(t), /thousands separator/);
  assert.match(reason('1,5'), /decimal comma/);
  for (const t of ['12abc', '1e', 'e5', '.', '--1', '1.2.3', '١٢', '−5', '5%']) assert.match(reason(t), /not a number in decimal notation/);
});

test.run();
