/**
 * Runs `count` jobs, at most `concurrency` at a time; no job starts after `deadline` (epoch ms), so
 * a run is bounded in time as well as in count. Resolves with how many jobs ran.
 */
export async function runPool(count: number, concurrency: number, deadline: number, job: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  let ran = 0;
  const worker = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      await job(i);
      ran++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return ran;
}

/** `p`, or `undefined` after `ms` (the caller then cleans up what `p` holds). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `count()` has not changed for `quietMs`, or after `maxMs`. */
export async function settled(count: () => number, quietMs = 1500, maxMs = 20_000): Promise<void> {
  const end = Date.now() + maxMs;
  let last = count();
  let since = Date.now();
  while (Date.now() < end && Date.now() - since < quietMs) {
    await new Promise((r) => setTimeout(r, 100));
    const now = count();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}
