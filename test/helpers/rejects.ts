import * as assert from 'uvu/assert';

/** uvu/assert has no async `rejects`: awaits `fn` and checks that it throws an error matching `pattern`. */
export async function assertRejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
}
