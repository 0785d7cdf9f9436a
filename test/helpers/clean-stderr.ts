import * as assert from 'uvu/assert';

/**
 * What a user must never read from an icosfl CLI: stack frames, zod's error JSON, an object
 * printed as [object Object], or Node's raw "ENOENT: no such file…, open '…'" wording.
 */
export function assertCleanStderr(stderr: string): void {
  assert.not.match(stderr, /^\s+at /m, `a stack frame in: ${stderr}`);
  assert.not.match(stderr, /ZodError|"code":\s*"invalid_/, `zod text in: ${stderr}`);
  assert.not.match(stderr, /\[object Object\]/, `[object Object] in: ${stderr}`);
  assert.not.match(stderr, /\bE[A-Z]{3,}: [a-z]/, `a raw errno prefix in: ${stderr}`);
  assert.not.match(stderr, /ERR_[A-Z_]+/, `a raw Node error code in: ${stderr}`);
}
