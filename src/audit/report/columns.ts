import { UPSTREAM_ERROR_CAUSES, type UpstreamErrorCause } from '../error-cause.js';
import type { Percentiles } from './figure-kinds.js';
import type { AuditReport, DestinationReport } from './report.js';

/**
 * The report's tables, one entry a column, shared by the text report and the HTML page. A column
 * has a header for each view it appears in, and one cell function; `html` says which view asks
 * (the page spells some figures out), `none` is that view's mark for "no figure". `help` is the
 * docs/audit.md's meaning of the column: the page's header tooltip and glossary (glossary.ts).
 */
export interface Column<R> {
  text?: string;
  html?: string;
  help: string;
  cell(row: R, view: View): string;
}

export interface View {
  html: boolean;
  none: string;
}

export const DESTINATION_COLUMNS: readonly Column<DestinationReport>[] = [
  { text: 'DESTINATION', html: 'destination', help: 'the upstream host:port', cell: (d) => d.destination },
  {
    text: 'CONN',
    html: 'connections',
    help: 'every upstream TLS handshake attempted (tls.handshake records), failed ones included',
    cell: (d) => String(d.connections),
  },
  {
    text: 'RESUMED',
    html: 'resumed',
    help: 'share of completed handshakes the server resumed',
    cell: (d, v) => pct(d.resumedShare, v.none),
  },
  { text: 'FULL', help: 'completed handshakes that were not resumed', cell: (d) => String(d.full) },
  {
    text: 'NONE/EXP/REF/VER',
    html: 'full: none/expired/refused/version',
    help:
      'why each full handshake was full: nothing offered (the slot was empty: first contact, or single use spent the stock) / ' +
      'expired (only expired entries were left) / refused (a ticket or session was offered and the server did not take it: ' +
      'anti-replay, key rotation, a restart) / version mismatch (a TLS 1.2 session went to a TLS 1.3 server or the reverse: ' +
      'a version-mixed load balancer)',
    cell: ({ fullByCause: c }) => `${c['nothing-offered']}/${c.expired}/${c.refused}/${c['version-mismatch']}`,
  },
  {
    text: 'VERSIONS',
    html: 'versions',
    help: 'negotiated TLS protocol versions, with counts',
    cell: (d, v) =>
      v.html
        ? entries(d.versions, NBSP)
        : Object.keys(d.versions)
            .map((x) => x.replace('TLSv', ''))
            .join(',') || v.none,
  },
  {
    text: 'TKT/FULL',
    html: 'tickets/full',
    help: 'mean tickets (TLS 1.3) or sessions (TLS 1.2) received and stored per full handshake',
    cell: (d, v) => fixed(d.ticketsPerFull, v.none),
  },
  {
    text: 'TKT/RES',
    html: 'tickets/resumed',
    help: 'mean tickets (TLS 1.3) or sessions (TLS 1.2) received and stored per resumed handshake',
    cell: (d, v) => fixed(d.ticketsPerResumed, v.none),
  },
  {
    text: 'K',
    help: 'k: the most frequent number of tickets received after a completed full TLS 1.3 handshake (OpenSSL and Node send 2, Postfix 1)',
    cell: (d, v) => (d.verdict.ticketsPerFull === null ? v.none : String(d.verdict.ticketsPerFull)),
  },
  {
    text: 'RENEWS',
    help: 'yes: most resumed TLS 1.3 handshakes brought at least one new ticket; unknown until one resumption is seen',
    cell: (d) => d.verdict.renews,
  },
  {
    text: 'REUSED',
    help:
      'what a ticket offered a second time got: refused (most got a refused full handshake: anti-replay), accepted (most resumed), ' +
      'untested (nothing was ever offered twice: normal under reuse: never)',
    cell: (d) => d.verdict.reusedTickets,
  },
  {
    text: 'CEILING',
    html: 'ceiling',
    help:
      'the share of connections strictly single-use tickets can resume at best: k/(k+1) when the server does not renew ' +
      '(66.7% for k=2, 50% for k=1), ~1 when it renews or for TLS 1.2',
    cell: (d, v) => ceiling(d, v.none),
  },
  {
    text: 'REPEATS A/U',
    html: 'repeats adaptive/other',
    help:
      'single-use violations: TLS 1.3 tickets offered again within --ticket-window; adaptive (A): on purpose, by cache.reuse: adaptive; ' +
      'other (U): unattributed, must always be 0 (a bug worth reporting)',
    cell: ({ singleUseViolations: s }) => `${s.adaptive}/${s.unattributed}`,
  },
  {
    text: 'FULL MS',
    html: 'full ms p50/p95',
    help: 'median / 95th percentile of full handshake time in ms (TCP connect to TLS secure), within ±4.5%',
    cell: (d, v) => percentiles(d.handshakeMs.full, v),
  },
  {
    text: 'RESUMED MS',
    html: 'resumed ms p50/p95',
    help: 'median / 95th percentile of resumed handshake time in ms, within ±4.5%',
    cell: (d, v) => percentiles(d.handshakeMs.resumed, v),
  },
  {
    text: 'LEFT',
    html: 'tickets left',
    help: 'TLS 1.3 tickets left in the slot after the latest handshake',
    cell: (d) => String(d.ticketsLeft),
  },
];

type UpstreamErrorRow = AuditReport['upstreamErrors']['destinations'][number];

const CAUSE_HELP: Record<UpstreamErrorCause, string> = {
  connect: 'failed to connect: refused, unreachable',
  timeout: 'no answer in time',
  closed: 'the peer reset or closed the connection',
  certificate: 'certificate verification failed',
  tls: 'another TLS failure',
  protocol: 'the server said something ticketbooth cannot go on with (SMTP before TLS)',
  other: 'anything else',
};

/** Failed attempts per destination: one column per cause, then where they stopped. */
export const UPSTREAM_ERROR_COLUMNS: readonly Column<UpstreamErrorRow>[] = [
  { text: 'DESTINATION', html: 'destination', help: 'the upstream host:port', cell: (d) => d.destination },
  { text: 'FAILED', html: 'failed', help: 'failed handshakes plus upstream.error lines', cell: (d) => String(d.total) },
  ...UPSTREAM_ERROR_CAUSES.map((c): Column<UpstreamErrorRow> => ({
    text: c.toUpperCase(),
    html: c,
    help: CAUSE_HELP[c],
    cell: (d) => String(d.byCause[c] ?? 0),
  })),
  {
    text: 'STAGES',
    html: 'stages',
    help: 'where the attempts stopped: connect, greeting, ehlo, starttls, injection; tls for a failed handshake',
    cell: (d) => entries(d.byStage),
  },
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

/** Keeps a name and its count on one line of a table cell. */
const NBSP = '\u00a0';

/** `k v, k v`: tallies in prose. */
export function entries(o: Record<string, number>, space = ' '): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}${space}${v}`)
    .join(', ');
}
