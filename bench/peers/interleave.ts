/**
 * Interleaved repetitions: rep 1 runs every contender once (A B C), then rep 2 (A B C) and so on,
 * so drift in the machine's load falls on all alike. A ratio is the median of the per-rep ratios
 * (each taken between neighbours in time), not a ratio of medians.
 */
import { median } from '../section.js';

export const REPS = 5;

/** Runs `one(c, rep)` for each contender in order, `reps` times; the samples per contender in rep order. */
export async function interleave<C extends string, S>(
  contenders: readonly C[],
  reps: number,
  one: (c: C, rep: number) => Promise<S>,
): Promise<Record<C, S[]>> {
  const out = Object.fromEntries(contenders.map((c) => [c, [] as S[]])) as Record<C, S[]>;
  for (let rep = 0; rep < reps; rep++) for (const c of contenders) out[c].push(await one(c, rep));
  return out;
}

/** Median of a[i] / b[i]. */
export function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]));
}
