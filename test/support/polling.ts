/**
 * Polling for end-to-end suites: one way to wait for something the server does in its own time
 * (a queue run, a batch of counters, a reconnect). A deadline only bounds a hang; no test
 * asserts how fast the condition came.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something truthy, and returns that; throws (naming `what`) at the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what} (last: ${String(last)})`);
    await sleep(everyMs);
  }
}

/**
 * Reads until `check` holds or the deadline passes, and returns the last value read either way,
 * so the test's own assertion on it says what was wrong.
 */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await sleep(everyMs);
  }
}
