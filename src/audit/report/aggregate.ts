import { upstreamErrorCause } from '../error-cause.js';
import { TlsmgrStats } from './tlsmgr-figures.js';
import { handshakeConditions, HandshakeStats } from './handshake-figures.js';
import { isoTimeMs } from './iso-time.js';
import { OfferedTickets } from './offered-tickets.js';
import type { HandshakeRecord } from './record-schemas.js';
import { readRecord } from './records.js';
import { SmtpRequestStats } from './smtp-requests.js';
import { Series, TimeAxis } from './time-series.js';
import { UpstreamErrorStats } from './upstream-error-figures.js';

/**
 * Folds audit lines, one at a time, into per-destination and overall figures. State is per
 * destination (the tables of handshake-figures.ts and upstream-error-figures.ts), plus the
 * windowed set of offered ticket hashes (see offered-tickets.ts), plus, for the HTML charts only,
 * up to `maxBuckets` time buckets per destination. Nothing grows with the number of lines.
 */

export interface Filters {
  sinceMs?: number;
  untilMs?: number;
  /** `host:port` (exact) or any substring of the destination. */
  dest?: string;
}

export interface AggregateOptions {
  filters?: Filters;
  /** Keep time series for the charts. */
  series?: boolean;
  ticketWindowMs?: number;
  maxHashesPerGeneration?: number;
  maxBuckets?: number;
  /** Destinations reported one by one; handshakes to any further ones are pooled (default 20,000). */
  maxDestinations?: number;
}

/** Where handshakes to destinations beyond `maxDestinations` are counted. */
export const OTHER_DESTINATIONS = '(other destinations)';

/** What became of the lines read. */
export interface InputCounts {
  lines: number;
  blank: number;
  malformed: number;
  /** Lines cut off mid-record (a crash, a copy of a file being written). */
  truncated: number;
  /** Well-formed records of a kind this report does not know. */
  otherEvents: number;
  filteredOut: number;
  handshakes: number;
  smtpTransactions: number;
  clientsRefused: number;
  /** `upstream.error` lines (failures before TLS). */
  upstreamErrors: number;
  /** Handshakes counted under OTHER_DESTINATIONS (the per-destination cap was reached). */
  pooledHandshakes: number;
}

/** Destinations whose time series are kept for the HTML charts (which draw the 8 busiest). */
const MAX_SERIES = 64;

export class Aggregator {
  readonly destinations = new Map<string, HandshakeStats>();
  readonly input: InputCounts = {
    lines: 0,
    blank: 0,
    malformed: 0,
    truncated: 0,
    otherEvents: 0,
    filteredOut: 0,
    handshakes: 0,
    smtpTransactions: 0,
    clientsRefused: 0,
    upstreamErrors: 0,
    pooledHandshakes: 0,
  };
  /** Failed attempts per destination (bounded like `destinations`: past the cap, pooled). */
  readonly upstreamErrors = new Map<string, UpstreamErrorStats>();
  /** SMTP transactions by the class of the reply the client got (`2xx` ...). */
  readonly smtpByClass = new Map<string, number>();
  /** Lines that were one hop's part of a client transaction spanning several (LMTP, or the SMTP front with a spool), by how many. */
  readonly smtpPartsByHops = new Map<string, number>();
  /** SMTP transactions per next hop, and how many rode a cached connection (no connect, no handshake). */
  readonly smtpByNextHop = new Map<string, NextHopStats>();
  /** DSN, REQUIRETLS and TLS-Required: No per next hop (smtp-requests.ts). */
  readonly smtpRequests: SmtpRequestStats;
  /** tlsmgr mode (Postfix's session cache): overall, and per destination (bounded like `destinations`). */
  readonly tlsmgr = new TlsmgrStats();
  readonly tlsmgrByDestination = new Map<string, TlsmgrStats>();
  /** Refused clients by reason. */
  readonly refusedClients = new Map<string, number>();
  readonly offers: OfferedTickets;
  readonly axis: TimeAxis;
  readonly overallSeries: Series | undefined;
  readonly series = new Map<string, Series>();

  constructor(readonly options: AggregateOptions = {}) {
    this.offers = new OfferedTickets(options.ticketWindowMs, options.maxHashesPerGeneration);
    this.smtpRequests = new SmtpRequestStats(this.maxDestinations(), OTHER_DESTINATIONS);
    this.axis = new TimeAxis(options.maxBuckets);
    this.overallSeries = options.series ? new Series(this.axis) : undefined;
  }

  /** All destinations together. */
  overall(): HandshakeStats {
    const all = new HandshakeStats();
    for (const s of this.destinations.values()) all.merge(s);
    return all;
  }

  /** All destinations' failed attempts together. */
  overallUpstreamErrors(): UpstreamErrorStats {
    const all = new UpstreamErrorStats();
    for (const s of this.upstreamErrors.values()) all.merge(s);
    return all;
  }

  addLine(line: string): void {
    this.input.lines++;
    const r = readRecord(line);
    if (typeof r === 'string') {
      this.input[r]++;
      return;
    }
    switch (r.event) {
      case 'tls.handshake':
        return this.addHandshake(r);
      case 'smtp.transaction':
        if (!this.passes(r.time, r.nextHop)) return;
        this.input.smtpTransactions++;
        if (r.nextHop !== undefined)
          this.addNextHop(r.nextHop, r.reused !== undefined, r.dane && daneOutcome(r.dane), r.sts && stsOutcome(r.sts));
        if (r.hops !== undefined && r.hops > 1) increment(this.smtpPartsByHops, String(r.hops));
        this.smtpRequests.add(r);
        return increment(this.smtpByClass, `${Math.floor(r.code / 100)}xx`);
      case 'upstream.error':
        if (!this.passes(r.time, r.destination)) return;
        this.input.upstreamErrors++;
        return this.failureStats(r.destination).addFailure({ cause: upstreamErrorCause(r), stage: r.stage });
      case 'client.refused':
        if (!this.passes(r.time, undefined)) return;
        this.input.clientsRefused++;
        return increment(this.refusedClients, r.reason);
      case 'tlsmgr.lookup':
        if (!this.passes(r.time, r.destination)) return;
        this.tlsmgr.addLookup(r);
        return this.tlsmgrOf(r.destination).addLookup(r);
      case 'tlsmgr.update':
        if (!this.passes(r.time, r.destination)) return;
        this.tlsmgr.addUpdate(r);
        return this.tlsmgrOf(r.destination).addUpdate(r);
    }
  }

  private addHandshake(e: HandshakeRecord): void {
    if (!this.passes(e.time, e.destination)) return;
    this.input.handshakes++;
    // Only ticket offers and the charts need the time as a number.
    const offered = e.offered === 'tls13-ticket' ? e.offeredHash : undefined;
    const timeMs = (offered !== undefined || this.overallSeries) && e.time !== undefined ? isoTimeMs(e.time) : NaN;
    const repeat = offered !== undefined && this.offers.offer(offered, Number.isNaN(timeMs) ? undefined : timeMs);
    let destination = e.destination;
    let stats = this.destinations.get(destination);
    if (stats === undefined) {
      if (this.destinations.size >= this.maxDestinations()) {
        // Bounded like everything else: past the cap, new destinations share one pooled entry.
        destination = OTHER_DESTINATIONS;
        this.input.pooledHandshakes++;
        stats = this.destinations.get(destination);
      }
      if (stats === undefined) this.destinations.set(destination, (stats = new HandshakeStats()));
    }
    stats.add(e, handshakeConditions(e, repeat));
    if (e.error !== undefined) this.failureStats(e.destination).addFailure({ cause: upstreamErrorCause(e), stage: 'tls' });
    if (this.overallSeries && !Number.isNaN(timeMs)) {
      const sample = { timeMs, resumed: e.resumed, failed: e.error !== undefined, handshakeMs: e.handshakeMs, ticketsLeft: e.ticketsLeft };
      if (!this.series.has(destination) && this.series.size >= MAX_SERIES) this.dropQuietestSeries();
      let series = this.series.get(destination);
      if (series === undefined) this.series.set(destination, (series = new Series(this.axis)));
      series.add(sample);
      this.overallSeries.add(sample);
    }
  }

  /**
   * The charts draw the busiest destinations only, so series are kept for at most MAX_SERIES of
   * them (space-saving: a newcomer replaces the quietest so far). A busy destination keeps its
   * series from the moment it first overtook the quietest; one that was evicted early and came back
   * shows only its later buckets. Without this, a relay to 20,000 MX hosts held 20,000 series.
   */
  private dropQuietestSeries(): void {
    let quietest: string | undefined;
    let least = Infinity;
    for (const d of this.series.keys()) {
      const n = this.destinations.get(d)?.connections ?? 0;
      if (n < least) {
        least = n;
        quietest = d;
      }
    }
    if (quietest !== undefined) this.series.delete(quietest);
  }

  private failureStats(destination: string): UpstreamErrorStats {
    const pooled = !this.upstreamErrors.has(destination) && this.upstreamErrors.size >= this.maxDestinations();
    const key = pooled ? OTHER_DESTINATIONS : destination;
    let stats = this.upstreamErrors.get(key);
    if (stats === undefined) this.upstreamErrors.set(key, (stats = new UpstreamErrorStats()));
    return stats;
  }

  private tlsmgrOf(destination: string): TlsmgrStats {
    const key =
      this.tlsmgrByDestination.has(destination) || this.tlsmgrByDestination.size < this.maxDestinations()
        ? destination
        : OTHER_DESTINATIONS;
    let s = this.tlsmgrByDestination.get(key);
    if (s === undefined) this.tlsmgrByDestination.set(key, (s = new TlsmgrStats()));
    return s;
  }

  private addNextHop(nextHop: string, reused: boolean, dane: string | undefined, sts: string | undefined): void {
    const key = this.smtpByNextHop.has(nextHop) || this.smtpByNextHop.size < this.maxDestinations() ? nextHop : OTHER_DESTINATIONS;
    const t = this.smtpByNextHop.get(key) ?? { transactions: 0, reused: 0 };
    this.smtpByNextHop.set(key, t);
    t.transactions++;
    if (reused) t.reused++;
    if (dane !== undefined) (t.dane ??= {})[dane] = (t.dane[dane] ?? 0) + 1;
    if (sts !== undefined) (t.sts ??= {})[sts] = (t.sts[sts] ?? 0) + 1;
  }

  private maxDestinations(): number {
    return this.options.maxDestinations ?? 20_000;
  }

  /** Time and destination filters; a record without a readable time fails a time filter. */
  private passes(time: string | undefined, destination: string | undefined): boolean {
    const f = this.options.filters;
    if (!f) return true;
    if (f.sinceMs !== undefined || f.untilMs !== undefined) {
      const t = time !== undefined ? isoTimeMs(time) : NaN;
      if (Number.isNaN(t) || (f.sinceMs !== undefined && t < f.sinceMs) || (f.untilMs !== undefined && t >= f.untilMs)) {
        this.input.filteredOut++;
        return false;
      }
    }
    if (f.dest !== undefined && (destination === undefined || !destination.includes(f.dest))) {
      this.input.filteredOut++;
      return false;
    }
    return true;
  }
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** One next hop's SMTP transactions: how many rode a cached connection, and under DANE what applied and how it ended. */
export interface NextHopStats {
  transactions: number;
  reused: number;
  /** `dane:Verified`, `may:Untrusted`, `defer:tlsa-lookup-failed` ...: transactions per DANE outcome. */
  dane?: Record<string, number>;
  /** `enforce(id):success`, `testing(id):certificate-not-trusted`, `no-policy`, `no-policy:sts-policy-fetch-error` ...: transactions per MTA-STS outcome. */
  sts?: Record<string, number>;
}

/** The MTA-STS mode in force (with its policy id), and the outcome: the TLS-RPT result, or why no policy could be had. */
function stsOutcome(s: { mode?: string; id?: string; result?: string; fetchFailure?: string }): string {
  const policy = s.mode ? `${s.mode}(${s.id ?? '?'})` : 'no-policy';
  const outcome = s.result ?? s.fetchFailure;
  return outcome ? `${policy}:${outcome}` : policy;
}

/** The level a DANE host got, and its verdict: the reason when there is one, else how the peer was authenticated. */
function daneOutcome(d: { applied: string; auth?: string; reason?: string }): string {
  return `${d.applied}:${d.reason ?? d.auth ?? 'cleartext'}`;
}
