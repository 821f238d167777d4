import type { FullHandshakeCause, OfferKind } from '../../resumption/policy.js';
import { UPSTREAM_ERROR_CAUSES } from '../error-cause.js';
import { FAILURE_STAGES, OTHER_DESTINATIONS, type Aggregator, type HandshakeStats, type InputCounts, type UpstreamErrorStats } from './aggregate.js';
import type { InputProblem } from './read-lines.js';
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
    smtp: { transactions: number; byClass: Record<string, number> };
    clientsRefused: Record<string, number>;
  };
  destinations: DestinationReport[];
  /**
   * Failed upstream attempts (failed handshakes, stage `tls`, and `upstream.error` lines) by cause
   * and stage, overall and per destination, most failures first.
   */
  upstreamErrors: UpstreamErrorsReport & { destinations: (UpstreamErrorsReport & { destination: string })[] };
  /** Time buckets for the charts (HTML only). */
  series?: SeriesReport;
}

export interface StatsReport {
  connections: number;
  failed: number;
  resumed: number;
  /** resumed / successful handshakes; null when none succeeded. */
  resumedShare: number | null;
  full: number;
  fullByCause: Record<FullHandshakeCause | 'unknown', number>;
  versions: Record<string, number>;
  offered: Record<OfferKind, number>;
  errors: Record<string, number>;
  ticketsPerFull: number | null;
  ticketsPerResumed: number | null;
  /** Sessions received that could not be read, so were not kept. */
  ticketsUnreadable: number;
  adaptiveReuse: { reoffered: number; resumed: number; refused: number };
  singleUseViolations: { total: number; adaptive: number; unattributed: number };
  handshakeMs: { full: Percentiles; resumed: Percentiles };
  ticketsLeft: number;
  firstSeen?: string;
  lastSeen?: string;
}

export interface UpstreamErrorsReport {
  total: number;
  /** connect, timeout, closed, certificate, tls, protocol, other (see audit/error-cause.ts). */
  byCause: Record<string, number>;
  /** connect, greeting, ehlo, starttls, injection; tls for a failed handshake. */
  byStage: Record<string, number>;
}

export interface Percentiles {
  n: number;
  p50: number | null;
  p95: number | null;
  mean: number | null;
}

export interface DestinationReport extends StatsReport {
  destination: string;
  servernames: string[];
  listeners: string[];
  verdict: Verdict;
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
    .map(([destination, s]): DestinationReport => ({
      destination,
      servernames: [...s.servernames],
      listeners: [...s.listeners],
      ...statsReport(s),
      verdict: destination === OTHER_DESTINATIONS ? pooledVerdict() : verdictOf(s),
    }))
    .sort((a, b) => b.connections - a.connections || a.destination.localeCompare(b.destination));
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
      ...statsReport(agg.overall()),
      smtp: agg.smtp,
      clientsRefused: agg.refusedClients,
    },
    destinations,
    upstreamErrors: {
      ...upstreamErrorsReport(agg.overallUpstreamErrors()),
      destinations: [...agg.upstreamErrors]
        .map(([destination, s]) => ({ destination, ...upstreamErrorsReport(s) }))
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
  return { ticketsPerFull: null, ticketsPerResumed: null, renews: 'unknown', reusedTickets: 'untested', ceiling: null, ceilingBasis: 'several destinations pooled', phrases: ['destinations past --max-destinations, pooled: no verdict'] };
}

function statsReport(s: HandshakeStats): StatsReport {
  const ok = s.resumed + s.full;
  return {
    connections: s.connections,
    failed: s.failed,
    resumed: s.resumed,
    resumedShare: ok === 0 ? null : round(s.resumed / ok, 4),
    full: s.full,
    fullByCause: { ...s.fullByCause },
    versions: Object.fromEntries(s.versions),
    offered: { ...s.offered },
    errors: Object.fromEntries(s.errors),
    ticketsPerFull: s.full === 0 ? null : round(s.receivedAfterFull / s.full, 2),
    ticketsPerResumed: s.resumed === 0 ? null : round(s.receivedAfterResumed / s.resumed, 2),
    ticketsUnreadable: s.ticketsUnreadable,
    adaptiveReuse: { reoffered: s.reoffered, resumed: s.reofferedResumed, refused: s.reofferedRefused },
    singleUseViolations: { total: s.repeatOffers, adaptive: s.repeatAdaptive, unattributed: s.repeatUnattributed },
    handshakeMs: {
      full: { n: s.fullMs.count, p50: s.fullMs.quantile(0.5), p95: s.fullMs.quantile(0.95), mean: s.fullMs.mean() },
      resumed: { n: s.resumedMs.count, p50: s.resumedMs.quantile(0.5), p95: s.resumedMs.quantile(0.95), mean: s.resumedMs.mean() },
    },
    ticketsLeft: s.ticketsLeft,
    ...(s.firstTime ? { firstSeen: s.firstTime } : {}),
    ...(s.lastTime ? { lastSeen: s.lastTime } : {}),
  };
}

/** Causes and stages in a fixed order (the attempt's order for stages), whatever order the log had. */
function upstreamErrorsReport(s: UpstreamErrorStats): UpstreamErrorsReport {
  const inOrder = <K extends string>(m: Map<K, number>, order: readonly string[]): Record<string, number> =>
    Object.fromEntries([...m].sort((x, y) => order.indexOf(x[0]) - order.indexOf(y[0])));
  return { total: s.total, byCause: inOrder(s.byCause, UPSTREAM_ERROR_CAUSES), byStage: inOrder(s.byStage, FAILURE_STAGES) };
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

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
