/** Milliseconds since `started` (a `performance.now()` time), to the hundredth, as audit lines give them. */
export function msSince(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
