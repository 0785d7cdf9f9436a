/** Bounded waits for tests: every wait ends, with a message saying what never happened. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` every `intervalMs` until it holds; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition', intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Resolves with `promise`'s value, or rejects if it takes longer than `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what = 'promise'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A file-level bound: if the test file is still running after `ms` (a leaked socket or timer
 * keeps it alive), it exits with status 1 instead of hanging until the runner's timeout.
 * The timer is unref'd, so it neither keeps the process alive nor shows as an active timer.
 */
export function exitAfter(ms: number, file: string): void {
  setTimeout(() => {
    console.error(`${file}: still running after ${ms} ms; something was left open`);
    process.exit(1);
  }, ms).unref();
}
