import { OTHER_DESTINATIONS, type Aggregator, type InputCounts, type NextHopStats } from './aggregate.js';
import { placed, round, type Placed } from './figures.js';
import { HANDSHAKE_FIGURES, type HandshakeFigures } from './handshake-figures.js';
import type { InputProblem } from './read-lines.js';
import { recommendationsOf } from './recommendations.js';
import type { SmtpRequestsReport } from './smtp-requests.js';
import type { TlsmgrValues } from './tlsmgr-figures.js';
import type { UpstreamErrorValues } from './upstream-error-figures.js';
import { verdictOf, type Verdict } from './verdicts.js';

/** The report as plain data: what `--format json` prints and what the text and HTML views show. */
export interface AuditReport {
  generatedAt: string;
  sources: string[];
  filters: { since?: string; until?: string; dest?: string };
  input: InputCounts & { problems: InputProblem[] };
  singleUseCheck: {
    /** How far back a repeated offer is recognised. */
    windowSeconds: number;
    /** Set when the hash set turned over early: only this much history was certainly checked. */
    shortenedToSeconds?: number;
  };
  overall: StatsReport & {
    destinations: number;
    /** `reused`: transactions on a cached upstream connection (no connect, no handshake). */
    smtp: {
      transactions: number;
      byClass: Record<string, number>;
      reused: number;
      /**
       * Client transactions that went to several next hops (LMTP, or the SMTP front with a spool): `parts` lines (each one hop's
       * part, counted in `transactions` and `byNextHop` like any), in `clientTransactions`, by hop count.
       */
      fanOut?: { parts: number; clientTransactions: number; partsByHops: Record<string, number> };
      byNextHop: Array<{ nextHop: string } & NextHopStats>;
    };
    clientsRefused: Record<string, number>;
  };
  destinations: DestinationReport[];
  /** DSN requests passed on or answered locally, REQUIRETLS outcomes and TLS-Required: No, per next hop; absent when none was asked. */
  smtpRequests?: SmtpRequestsReport;
  /** tlsmgr mode (`ticketbooth tlsmgr`): what Postfix's lookups were handed, what its updates stored; absent without such records. */
  tlsmgr?: TlsmgrValues & { destinations: Array<{ destination: string } & TlsmgrValues> };
  /**
   * Failed upstream attempts (failed handshakes, stage `tls`, and `upstream.error` lines) by cause
   * and stage, overall and per destination, most failures first.
   */
  upstreamErrors: UpstreamErrorsReport & { destinations: (UpstreamErrorsReport & { destination: string })[] };
  /** Time buckets for the charts (HTML only). */
  series?: SeriesReport;
}

/** The handshake figures of every statistics block, overall and per destination (handshake-figures.ts). */
export type StatsReport = Placed<HandshakeFigures, 'stats'>;

/** Failed attempts by cause and stage (see `UPSTREAM_ERROR_FIGURES`). */
export type UpstreamErrorsReport = UpstreamErrorValues;

export interface DestinationReport extends Placed<HandshakeFigures, 'destination'>, StatsReport {
  destination: string;
  verdict: Verdict;
  /** What to change for it, when the figures support it (recommendations.ts); none for pooled destinations. */
  recommendations: string[];
}

export interface SeriesReport {
  bucketSeconds: number;
  /** Bucket start times (ISO). */
  starts: string[];
  overall: SeriesValues;
  /** The busiest destinations (by connections), up to `topDestinations`. */
  destinations: { destination: string; values: SeriesValues }[];
}

export interface SeriesValues {
  connections: number[];
  /** Resumed share per bucket, 0..1, null where there was no successful handshake. */
  resumedShare: (number | null)[];
  fullMsMean: (number | null)[];
  resumedMsMean: (number | null)[];
  ticketsLeft: (number | null)[];
}

export interface ReportMeta {
  sources: string[];
  filters: AuditReport['filters'];
  problems: InputProblem[];
  topDestinations?: number;
}

export function buildReport(agg: Aggregator, meta: ReportMeta): AuditReport {
  const destinations = [...agg.destinations]
    .map(([destination, s]): DestinationReport => {
      const values = s.values();
      const pooled = destination === OTHER_DESTINATIONS;
      const verdict = pooled ? pooledVerdict() : verdictOf(values);
      return {
        destination,
        ...placed(HANDSHAKE_FIGURES, values, 'destination'),
        ...placed(HANDSHAKE_FIGURES, values, 'stats'),
        verdict,
        recommendations: pooled ? [] : recommendationsOf(values, verdict),
      };
    })
    .sort((a, b) => b.connections - a.connections || a.destination.localeCompare(b.destination));
  const requests = agg.smtpRequests.report();
  const report: AuditReport = {
    generatedAt: new Date().toISOString(),
    sources: meta.sources.length ? meta.sources : ['-'],
    filters: meta.filters,
    input: { ...agg.input, problems: meta.problems },
    singleUseCheck: {
      windowSeconds: agg.offers.windowMs / 1000,
      ...(agg.offers.shortestHorizonMs !== undefined ? { shortenedToSeconds: Math.floor(agg.offers.shortestHorizonMs / 1000) } : {}),
    },
    overall: {
      destinations: agg.destinations.size,
      ...placed(HANDSHAKE_FIGURES, agg.overall().values(), 'stats'),
      smtp: {
        transactions: agg.input.smtpTransactions,
        byClass: Object.fromEntries(agg.smtpByClass),
        reused: [...agg.smtpByNextHop.values()].reduce((n, t) => n + t.reused, 0),
        ...(agg.smtpPartsByHops.size > 0 ? { fanOut: fanOutOf(agg.smtpPartsByHops) } : {}),
        byNextHop: [...agg.smtpByNextHop]
          .map(([nextHop, t]) => ({ nextHop, ...t }))
          .sort((a, b) => b.transactions - a.transactions || a.nextHop.localeCompare(b.nextHop)),
      },
      clientsRefused: Object.fromEntries(agg.refusedClients),
    },
    destinations,
    ...(requests ? { smtpRequests: requests } : {}),
    ...(agg.tlsmgrByDestination.size > 0
      ? {
          tlsmgr: {
            ...agg.tlsmgr.values(),
            destinations: [...agg.tlsmgrByDestination]
              .map(([destination, s]) => ({ destination, ...s.values() }))
              .sort((a, b) => b.lookups - a.lookups || a.destination.localeCompare(b.destination)),
          },
        }
      : {}),
    upstreamErrors: {
      ...agg.overallUpstreamErrors().values(),
      destinations: [...agg.upstreamErrors]
        .map(([destination, s]) => ({ destination, ...s.values() }))
        .sort((a, b) => b.total - a.total || a.destination.localeCompare(b.destination)),
    },
  };
  if (agg.overallSeries && Number.isFinite(agg.axis.minIndex)) {
    const top = destinations.slice(0, meta.topDestinations ?? 8);
    report.series = {
      bucketSeconds: agg.axis.widthMs / 1000,
      starts: agg.axis.starts().map((t) => new Date(t).toISOString()),
      overall: seriesValues(agg.overallSeries.values()),
      destinations: top.map((d) => ({ destination: d.destination, values: seriesValues(agg.series.get(d.destination)?.values() ?? []) })),
    };
  }
  return report;
}

/** Many destinations mixed together have no behaviour of their own. */
function pooledVerdict(): Verdict {
  return {
    ticketsPerFull: null,
    ticketsPerResumed: null,
    renews: 'unknown',
    reusedTickets: 'untested',
    ceiling: null,
    ceilingBasis: 'several destinations pooled',
    phrases: ['destinations past --max-destinations, pooled: no verdict'],
  };
}

function seriesValues(buckets: ReturnType<import('./time-series.js').Series['values']>): SeriesValues {
  return {
    connections: buckets.map((b) => b?.connections ?? 0),
    resumedShare: buckets.map((b) => (b && b.fullN + b.resumedN > 0 ? round(b.resumedN / (b.fullN + b.resumedN), 4) : null)),
    fullMsMean: buckets.map((b) => (b && b.fullN > 0 ? round(b.fullMsSum / b.fullN, 2) : null)),
    resumedMsMean: buckets.map((b) => (b && b.resumedN > 0 ? round(b.resumedMsSum / b.resumedN, 2) : null)),
    ticketsLeft: buckets.map((b) => b?.ticketsLeft ?? null),
  };
}

/** Parts by hop count, and the client transactions they make up (N parts of N hops: one). */
function fanOutOf(partsByHops: Map<string, number>): NonNullable<AuditReport['overall']['smtp']['fanOut']> {
  const parts = [...partsByHops.values()].reduce((n, x) => n + x, 0);
  const clientTransactions = [...partsByHops].reduce((n, [hops, x]) => n + Math.round(x / Number(hops)), 0);
  return { parts, clientTransactions, partsByHops: Object.fromEntries(partsByHops) };
}
