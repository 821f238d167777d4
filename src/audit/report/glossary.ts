import { DESTINATION_COLUMNS, UPSTREAM_ERROR_COLUMNS, type Column } from './columns.js';

/** One glossary entry: the page's header (or the text report's, for a text-only column), its text-report name when that differs. */
export interface GlossaryEntry {
  term: string;
  textName?: string;
  help: string;
}

export const VERDICT_HELP =
  "what the handshakes say about the server's tickets: k tickets per full handshake, renews on resumption or not, " +
  'refuses or accepts reused tickets, version-mixed (both TLS 1.2 and 1.3 negotiated: a load balancer over unlike backends)';

/** Terms the cells and charts use that no header names. */
const TERMS: readonly GlossaryEntry[] = [
  { term: 'verdict', help: VERDICT_HELP },
  {
    term: '~1',
    help: 'about every connection: the stock refills on every resumption (a renewing server), or one multi-use TLS 1.2 session',
  },
  { term: 'p50/p95', help: 'the median and the 95th percentile' },
  { term: '–', help: 'no figure yet (nothing of that kind was seen)' },
  {
    term: 'colors',
    help: 'red: full handshakes; green: resumed ones; black: all destinations; each destination its own other color, never red or green',
  },
];

/**
 * The page's glossary, in docs/audit.md's words: every column header of its tables, the columns only
 * the text report shows (it is on the page too), then the terms above; each term once.
 */
export function glossary(): GlossaryEntry[] {
  const seen = new Map<string, GlossaryEntry>();
  const add = (e: GlossaryEntry): void => {
    if (!seen.has(e.term)) seen.set(e.term, e);
  };
  const columns: readonly Column<never>[] = [...DESTINATION_COLUMNS, ...UPSTREAM_ERROR_COLUMNS];
  for (const c of columns) {
    const term = c.html ?? c.text ?? '';
    const textName = c.html !== undefined && c.text !== undefined && c.text.toLowerCase() !== c.html ? c.text : undefined;
    add({ term, ...(textName ? { textName } : {}), help: c.help });
  }
  TERMS.forEach(add);
  return [...seen.values()];
}
