import type { Mismatch } from './session.js';
import type { Finding, Verdict } from './verdict.js';

/** How many examples of each finding a report shows (the counts are always complete). */
const EXAMPLES = 5;

/** The findings, grouped, with the flags that replay a session (`--seed S --session i`). */
export function findingLines(v: Verdict, mismatches: Mismatch[], seed?: number): string[] {
  const out: string[] = [];
  const replay = (session: number): string => (seed !== undefined && session >= 0 ? ` [--seed ${seed} --session ${session}]` : '');
  const group = (title: string, fs: Finding[]): void => {
    if (fs.length === 0) return;
    out.push(`${title}: ${fs.length}${tally(fs.map((f) => f.kind))}`);
    for (const f of fs.slice(0, EXAMPLES)) out.push(`  ${f.kind} ${f.id}: ${f.detail}${replay(f.session)}`);
  };
  group('LOST', v.lost);
  group('DUPLICATED', v.duplicated);
  group('ALTERED', v.altered);
  group('PHANTOM', v.phantom);
  if (mismatches.length > 0) {
    const keys = new Map<string, Mismatch[]>();
    for (const m of mismatches) {
      const k = `${m.kind}: ${m.what}: got ${m.got.replace(/\d+ s$/, 'N s')}`;
      keys.set(k, [...(keys.get(k) ?? []), m]);
    }
    out.push(`UNEXPECTED REPLIES: ${mismatches.length}`);
    for (const [k, ms] of [...keys].sort((a, b) => b[1].length - a[1].length).slice(0, 12)) {
      out.push(`  ${ms.length}× ${k.slice(0, 160)}, want /${ms[0].want}/${replay(ms[0].session)}`);
    }
  }
  return out;
}

function tally(kinds: string[]): string {
  const n = new Map<string, number>();
  for (const k of kinds) n.set(k, (n.get(k) ?? 0) + 1);
  return ` (${[...n].map(([k, c]) => `${k} ${c}`).join(', ')})`;
}

/** Audit lines whose client address is undefined: issue 8 part 3 (a reset client logged as `undefined:undefined`). */
export function auditFindings(lines: Array<Record<string, unknown>>): { lines: number; undefinedClients: number } {
  return {
    lines: lines.length,
    undefinedClients: lines.filter((l) => typeof l.client === 'string' && l.client.includes('undefined')).length,
  };
}
