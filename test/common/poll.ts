// Waiting in tests by polling, never by a fixed sleep standing in for an event.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a value other than undefined, at most timeoutMs; throws with what() otherwise. */
export async function until<T>(timeoutMs: number, fn: () => Promise<T | undefined>, what: () => string, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await sleep(everyMs);
  }
}
