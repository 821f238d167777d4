/**
 * Polls `done` every 20 ms until it holds, or fails after `timeoutMs` saying what was awaited. The
 * way a test waits for an event it cannot subscribe to: the deadline is a failure, never the event.
 */
export async function until(done: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
