import { UPSTREAM_ERROR_CAUSES } from '../error-cause.js';
import type { Percentiles } from './figure-kinds.js';
import type { AuditReport, DestinationReport } from './report.js';

/**
 * The report's tables, one entry a column, shared by the text report and the HTML page. A column
 * has a header for each view it appears in, and one cell function; `html` says which view asks
 * (the page spells some figures out), `none` is that view's mark for "no figure".
 */
export interface Column<R> {
  text?: string;
  html?: string;
  cell(row: R, view: View): string;
}

export interface View {
  html: boolean;
  none: string;
}

export const DESTINATION_COLUMNS: readonly Column<DestinationReport>[] = [
  { text: 'DESTINATION', html: 'destination', cell: (d) => d.destination },
  { text: 'CONN', html: 'connections', cell: (d) => String(d.connections) },
  { text: 'RESUMED', html: 'resumed', cell: (d, v) => pct(d.resumedShare, v.none) },
  { text: 'FULL', cell: (d) => String(d.full) },
  {
    text: 'NONE/EXP/REF/VER',
    html: 'full: none/expired/refused/version',
    cell: ({ fullByCause: c }) => `${c['nothing-offered']}/${c.expired}/${c.refused}/${c['version-mismatch']}`,
  },
  {
    text: 'VERSIONS',
    html: 'versions',
    cell: (d, v) =>
      v.html
        ? entries(d.versions)
        : Object.keys(d.versions)
            .map((x) => x.replace('TLSv', ''))
            .join(',') || v.none,
  },
  { text: 'TKT/FULL', html: 'tickets/full', cell: (d, v) => fixed(d.ticketsPerFull, v.none) },
  { text: 'TKT/RES', html: 'tickets/resumed', cell: (d, v) => fixed(d.ticketsPerResumed, v.none) },
  { text: 'K', cell: (d, v) => (d.verdict.ticketsPerFull === null ? v.none : String(d.verdict.ticketsPerFull)) },
  { text: 'RENEWS', cell: (d) => d.verdict.renews },
  { text: 'REUSED', cell: (d) => d.verdict.reusedTickets },
  { text: 'CEILING', html: 'ceiling', cell: (d, v) => ceiling(d, v.none) },
  { text: 'REPEATS A/U', html: 'repeats adaptive/other', cell: ({ singleUseViolations: s }) => `${s.adaptive}/${s.unattributed}` },
  { text: 'FULL MS', html: 'full ms p50/p95', cell: (d, v) => percentiles(d.handshakeMs.full, v) },
  { text: 'RESUMED MS', html: 'resumed ms p50/p95', cell: (d, v) => percentiles(d.handshakeMs.resumed, v) },
  { text: 'LEFT', html: 'tickets left', cell: (d) => String(d.ticketsLeft) },
];

type UpstreamErrorRow = AuditReport['upstreamErrors']['destinations'][number];

/** Failed attempts per destination: one column per cause, then where they stopped. */
export const UPSTREAM_ERROR_COLUMNS: readonly Column<UpstreamErrorRow>[] = [
  { text: 'DESTINATION', html: 'destination', cell: (d) => d.destination },
  { text: 'FAILED', html: 'failed', cell: (d) => String(d.total) },
  ...UPSTREAM_ERROR_CAUSES.map((c): Column<UpstreamErrorRow> => ({
    text: c.toUpperCase(),
    html: c,
    cell: (d) => String(d.byCause[c] ?? 0),
  })),
  { text: 'STAGES', html: 'stages', cell: (d) => entries(d.byStage) },
];

/** The best share single-use tickets allow (verdicts.ts); `~1` where the stock refills. */
export function ceiling(d: DestinationReport, none: string): string {
  const c = d.verdict.ceiling;
  if (c === null) return none;
  return d.verdict.renews === 'yes' || c === 1 ? '~1' : pct(c, none);
}

/** p50/p95; the text report marks an empty histogram with one `none`, the page with two. */
export function percentiles(p: Percentiles, view: View): string {
  return p.n === 0 && !view.html ? view.none : `${p.p50 ?? view.none}/${p.p95 ?? view.none}`;
}

export function pct(x: number | null, none: string): string {
  return x === null ? none : `${(x * 100).toFixed(1)}%`;
}

export function fixed(x: number | null, none: string): string {
  return x === null ? none : x.toFixed(2);
}

/** `k v, k v`: tallies in prose. */
export function entries(o: Record<string, number>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}
