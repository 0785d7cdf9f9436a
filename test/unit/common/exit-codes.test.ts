import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXIT_CODES } from '../../../common/exit-codes.js';
import { ERROR_CODES, IcosflError } from '../../../common/errors.js';

test('every exit code has a distinct number and a help string', () => {
  const seen = new Set<number>();
  for (const [name, entry] of Object.entries(EXIT_CODES)) {
    assert.ok(entry.help.length > 5, `${name} has help`);
    assert.not.ok(seen.has(entry.code), `${name} code ${entry.code} is unique`);
    seen.add(entry.code);
  }
});

test('every error code has a description and IcosflError keeps code and cause', () => {
  for (const [code, entry] of Object.entries(ERROR_CODES)) {
    assert.ok(entry.help.length > 5, code);
    assert.ok(entry.exit in EXIT_CODES, `${code} declares exit ${entry.exit}`);
  }
  const cause = new Error('inner');
  const e = new IcosflError('RING_CORRUPT', 'bad', { cause });
  assert.is(e.code, 'RING_CORRUPT');
  assert.is(e.cause, cause);
  assert.instance(e, Error);
});

test.run();
