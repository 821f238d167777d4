/**
 * An ISO 8601 time in milliseconds, as Date.parse reads it (NaN when it cannot). The form the
 * audit logger writes (`toISOString()`: `2026-11-01T10:00:00.000Z`) is read by hand: Date.parse
 * took a tenth of an HTML report's run. Anything else, or a field out of range, goes to Date.parse.
 */
export function isoTimeMs(s: string): number {
  if (s.length !== 24 || !separatorsAt(s)) return Date.parse(s);
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  const ms = digits(s, 20, 3);
  // Date.parse takes day 31 of any month (rolling over, as Date.UTC does) and 24:00; Date.UTC reads
  // years below 100 as 19xx: those, and all else out of range, are left to Date.parse.
  const inRange =
    year >= 100 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= 31 &&
    hour >= 0 &&
    hour <= 23 &&
    minute >= 0 &&
    minute <= 59 &&
    second >= 0 &&
    second <= 59 &&
    ms >= 0;
  if (!inRange) return Date.parse(s);
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}

const [DASH, T, COLON, DOT, Z] = [...'-T:.Z'].map((c) => c.charCodeAt(0));

/** The separators where `toISOString()` puts them. */
function separatorsAt(s: string): boolean {
  const c = (i: number): number => s.charCodeAt(i);
  return c(4) === DASH && c(7) === DASH && c(10) === T && c(13) === COLON && c(16) === COLON && c(19) === DOT && c(23) === Z;
}

/** The decimal number of `n` digits at `at`; -1 when one is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
