/**
 * A benchmark section: a module exporting `run(): Promise<Section>`. `lines` is what a person
 * reads; `figures` (optional) is what bench/results.json keeps for machines and for comparing runs.
 */
export interface Section {
  name: string;
  lines: string[];
  figures?: Record<string, Figure>;
}

export interface Figure {
  value: number;
  /** e.g. `resumed of 59`, `ms`, `MB/s`, `ratio` */
  unit: string;
  /** The goal as stated in the issue, when there is one. */
  goal?: string;
  met?: boolean;
}

/** Rows of a small text table, columns padded to the widest cell. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export function pct(n: number, of: number): string {
  return of === 0 ? 'n/a' : `${((100 * n) / of).toFixed(1)}%`;
}
