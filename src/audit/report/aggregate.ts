import type { FullHandshakeCause, OfferKind } from '../../resumption/policy.js';
import { upstreamErrorCause, type UpstreamErrorCause } from '../error-cause.js';
import type { HandshakeEvent, UpstreamErrorStage } from '../events.js';
import { LogHistogram } from './histogram.js';
import { OfferedTickets } from './offered-tickets.js';
import { Series, TimeAxis } from './time-series.js';

/**
 * Folds audit lines, one at a time, into per-destination and overall counters. State is per
 * destination (a few hundred numbers each), plus the windowed set of offered ticket hashes
 * (see offered-tickets.ts), plus, for the HTML charts only, up to `maxBuckets` time buckets per
 * destination. Nothing grows with the number of lines.
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

/** Tickets counted per handshake up to this many; more fall in the last cell. */
export const MAX_TICKETS_COUNTED = 16;
const MAX_DISTINCT = 8;

export class HandshakeStats {
  connections = 0;
  failed = 0;
  resumed = 0;
  full = 0;
  fullByCause: Record<FullHandshakeCause | 'unknown', number> = { 'nothing-offered': 0, expired: 0, refused: 0, 'version-mismatch': 0, unknown: 0 };
  offered: Record<OfferKind, number> = { none: 0, 'tls13-ticket': 0, 'tls12-session': 0 };
  /** Negotiated versions; the two expected ones as fields (no hashing per line), others in the map. */
  tls13 = 0;
  tls12 = 0;
  otherVersions = new Map<string, number>();
  errors = new Map<UpstreamErrorCause, number>();
  /** Tickets or sessions received, per successful full and resumed handshake (any version). */
  receivedAfterFull = 0;
  receivedAfterResumed = 0;
  /** Sessions the servers sent that ticketbooth could not read (resumption off there). */
  ticketsUnreadable = 0;
  /** TLS 1.3 only: how many handshakes received 0, 1, 2, ... tickets. */
  tls13TicketsAfterFull = new Uint32Array(MAX_TICKETS_COUNTED + 1);
  tls13TicketsAfterResumed = new Uint32Array(MAX_TICKETS_COUNTED + 1);
  /** Adaptive reuse: spent tickets offered again, and what the server did with them. */
  reoffered = 0;
  reofferedResumed = 0;
  reofferedRefused = 0;
  /** Single use: a TLS 1.3 ticket hash offered when it had been offered before. */
  repeatOffers = 0;
  repeatAdaptive = 0;
  repeatUnattributed = 0;
  repeatResumed = 0;
  repeatRefused = 0;
  fullMs = new LogHistogram();
  resumedMs = new LogHistogram();
  firstTime: string | undefined;
  lastTime: string | undefined;
  /** Tickets left after the latest handshake (overall: the sum over destinations, the whole stock). */
  ticketsLeft = 0;
  readonly servernames = new Set<string>();
  readonly listeners = new Set<string>();

  get versions(): Map<string, number> {
    const m = new Map<string, number>();
    if (this.tls13) m.set('TLSv1.3', this.tls13);
    if (this.tls12) m.set('TLSv1.2', this.tls12);
    for (const [k, v] of this.otherVersions) m.set(k, v);
    return m;
  }

  add(e: HandshakeEvent, repeat: boolean): void {
    this.connections++;
    if (e.time !== undefined) {
      if (this.firstTime === undefined || e.time < this.firstTime) this.firstTime = e.time;
      if (this.lastTime === undefined || e.time >= this.lastTime) {
        this.lastTime = e.time;
        this.ticketsLeft = e.ticketsLeft;
      }
    } else {
      this.ticketsLeft = e.ticketsLeft;
    }
    if (this.servernames.size < MAX_DISTINCT && e.servername !== '') this.servernames.add(e.servername);
    if (this.listeners.size < MAX_DISTINCT && e.listener !== '') this.listeners.add(e.listener);
    switch (e.offered) {
      case 'none':
      case 'tls13-ticket':
      case 'tls12-session':
        this.offered[e.offered]++;
    }
    // A full handshake after a second offer is a refusal only when the cause says so: an expired
    // ticket or a version-mixed balancer says nothing about single use (old lines have no cause).
    const refused = !e.resumed && (e.fullCause === undefined || e.fullCause === 'refused');
    if (e.reoffered) {
      this.reoffered++;
      if (!e.error) {
        if (e.resumed) this.reofferedResumed++;
        else if (refused) this.reofferedRefused++;
      }
    }
    if (repeat) {
      this.repeatOffers++;
      if (e.reoffered) this.repeatAdaptive++;
      else this.repeatUnattributed++;
      if (!e.error) {
        if (e.resumed) this.repeatResumed++;
        else if (refused) this.repeatRefused++;
      }
    }
    if (e.error) {
      this.failed++;
      increment(this.errors, upstreamErrorCause(e));
      return;
    }
    const tls13 = e.protocol === 'TLSv1.3';
    if (tls13) this.tls13++;
    else if (e.protocol === 'TLSv1.2') this.tls12++;
    else if (e.protocol) increment(this.otherVersions, this.otherVersions.has(e.protocol) || this.otherVersions.size < MAX_DISTINCT ? e.protocol : 'other');
    this.ticketsUnreadable += Math.max(0, (e.ticketsUnreadable ?? 0) | 0);
    const tickets = Math.min(MAX_TICKETS_COUNTED, Math.max(0, e.ticketsReceived | 0));
    if (e.resumed) {
      this.resumed++;
      this.receivedAfterResumed += e.ticketsReceived;
      this.resumedMs.add(e.handshakeMs);
      if (tls13) this.tls13TicketsAfterResumed[tickets]++;
    } else {
      this.full++;
      switch (e.fullCause) {
        case 'nothing-offered':
        case 'expired':
        case 'refused':
        case 'version-mismatch':
          this.fullByCause[e.fullCause]++;
          break;
        default:
          this.fullByCause.unknown++;
      }
      this.receivedAfterFull += e.ticketsReceived;
      this.fullMs.add(e.handshakeMs);
      if (tls13) this.tls13TicketsAfterFull[tickets]++;
    }
  }

  /** Adds another destination's figures (for the overall view, built once at the end). */
  merge(o: HandshakeStats): void {
    for (const k of ['connections', 'failed', 'resumed', 'full', 'tls13', 'tls12', 'receivedAfterFull', 'receivedAfterResumed', 'ticketsUnreadable', 'reoffered', 'reofferedResumed', 'reofferedRefused', 'repeatOffers', 'repeatAdaptive', 'repeatUnattributed', 'repeatResumed', 'repeatRefused', 'ticketsLeft'] as const) {
      this[k] += o[k];
    }
    for (const k of Object.keys(this.fullByCause) as (keyof HandshakeStats['fullByCause'])[]) this.fullByCause[k] += o.fullByCause[k];
    for (const k of Object.keys(this.offered) as OfferKind[]) this.offered[k] += o.offered[k];
    for (const [k, v] of o.otherVersions) this.otherVersions.set(k, (this.otherVersions.get(k) ?? 0) + v);
    for (const [k, v] of o.errors) this.errors.set(k, (this.errors.get(k) ?? 0) + v);
    for (let i = 0; i <= MAX_TICKETS_COUNTED; i++) {
      this.tls13TicketsAfterFull[i] += o.tls13TicketsAfterFull[i];
      this.tls13TicketsAfterResumed[i] += o.tls13TicketsAfterResumed[i];
    }
    this.fullMs.merge(o.fullMs);
    this.resumedMs.merge(o.resumedMs);
    if (o.firstTime !== undefined && (this.firstTime === undefined || o.firstTime < this.firstTime)) this.firstTime = o.firstTime;
    if (o.lastTime !== undefined && (this.lastTime === undefined || o.lastTime > this.lastTime)) this.lastTime = o.lastTime;
  }
}

/** Where a failed attempt stopped: before TLS (an `upstream.error` line), or in the handshake. */
export type FailureStage = UpstreamErrorStage | 'tls';

/** In the order an attempt goes through them. */
export const FAILURE_STAGES: readonly (FailureStage | 'other')[] = ['connect', 'greeting', 'ehlo', 'starttls', 'injection', 'tls', 'other'];
const STAGES: ReadonlySet<string> = new Set(FAILURE_STAGES);

/** Failed upstream attempts to one destination: failed handshakes and `upstream.error` lines. */
export class UpstreamErrorStats {
  total = 0;
  byCause = new Map<UpstreamErrorCause, number>();
  byStage = new Map<FailureStage | 'other', number>();

  add(cause: UpstreamErrorCause, stage: FailureStage | 'other'): void {
    this.total++;
    increment(this.byCause, cause);
    increment(this.byStage, stage);
  }

  merge(o: UpstreamErrorStats): void {
    this.total += o.total;
    for (const [k, v] of o.byCause) this.byCause.set(k, (this.byCause.get(k) ?? 0) + v);
    for (const [k, v] of o.byStage) this.byStage.set(k, (this.byStage.get(k) ?? 0) + v);
  }
}

export interface SmtpStats {
  transactions: number;
  byClass: Record<string, number>;
}

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
  readonly input: InputCounts = { lines: 0, blank: 0, malformed: 0, truncated: 0, otherEvents: 0, filteredOut: 0, handshakes: 0, smtpTransactions: 0, clientsRefused: 0, upstreamErrors: 0, pooledHandshakes: 0 };
  /** Failed attempts per destination (bounded like `destinations`: past the cap, pooled). */
  readonly upstreamErrors = new Map<string, UpstreamErrorStats>();
  readonly smtp: SmtpStats = { transactions: 0, byClass: {} };
  readonly refusedClients: Record<string, number> = {};
  readonly offers: OfferedTickets;
  readonly axis: TimeAxis;
  readonly overallSeries: Series | undefined;
  readonly series = new Map<string, Series>();

  constructor(readonly options: AggregateOptions = {}) {
    this.offers = new OfferedTickets(options.ticketWindowMs, options.maxHashesPerGeneration);
    this.axis = new TimeAxis(options.maxBuckets);
    this.overallSeries = options.series ? new Series(this.axis) : undefined;
  }

  /** All destinations together. */
  overall(): HandshakeStats {
    const all = new HandshakeStats();
    for (const s of this.destinations.values()) all.merge(s);
    return all;
  }

  addLine(line: string): void {
    this.input.lines++;
    if (line.length === 0 || (line.charCodeAt(0) <= 32 && line.trim() === '')) {
      this.input.blank++;
      return;
    }
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      if (looksCutOff(line)) this.input.truncated++;
      else this.input.malformed++;
      return;
    }
    if (typeof record !== 'object' || record === null || typeof (record as { event?: unknown }).event !== 'string') {
      this.input.malformed++;
      return;
    }
    const r = record as { event: string; time?: unknown };
    switch (r.event) {
      case 'tls.handshake':
        if (!isHandshake(r)) this.input.malformed++;
        else this.addHandshake(r);
        return;
      case 'smtp.transaction': {
        const code = (r as { code?: unknown }).code;
        if (typeof code !== 'number') {
          this.input.malformed++;
          return;
        }
        const hop = (r as { nextHop?: unknown }).nextHop;
        if (!this.passes(r.time, typeof hop === 'string' ? hop : undefined)) return;
        this.input.smtpTransactions++;
        this.smtp.transactions++;
        const cls = `${Math.floor(code / 100)}xx`;
        this.smtp.byClass[cls] = (this.smtp.byClass[cls] ?? 0) + 1;
        return;
      }
      case 'upstream.error': {
        const u = r as { destination?: unknown; stage?: unknown; errorCode?: unknown; error?: unknown };
        if (typeof u.destination !== 'string') {
          this.input.malformed++;
          return;
        }
        if (!this.passes(r.time, u.destination)) return;
        this.input.upstreamErrors++;
        const stage = typeof u.stage === 'string' && STAGES.has(u.stage) && u.stage !== 'tls' ? (u.stage as UpstreamErrorStage) : 'other';
        this.failureStats(u.destination).add(upstreamErrorCause(u), stage);
        return;
      }
      case 'client.refused': {
        if (!this.passes(r.time, undefined)) return;
        this.input.clientsRefused++;
        const reason = String((r as { reason?: unknown }).reason);
        this.refusedClients[reason] = (this.refusedClients[reason] ?? 0) + 1;
        return;
      }
      default:
        this.input.otherEvents++;
    }
  }

  private addHandshake(e: HandshakeEvent): void {
    if (!this.passes(e.time, e.destination)) return;
    this.input.handshakes++;
    const timeMs = e.time !== undefined ? Date.parse(e.time) : NaN;
    const repeat = e.offered === 'tls13-ticket' && typeof e.offeredHash === 'string' && this.offers.offer(e.offeredHash, Number.isNaN(timeMs) ? undefined : timeMs);
    let destination = e.destination;
    let stats = this.destinations.get(destination);
    if (!stats) {
      // Bounded like everything else: past the cap, new destinations share one pooled entry.
      if (this.destinations.size >= (this.options.maxDestinations ?? 20_000)) {
        destination = OTHER_DESTINATIONS;
        stats = this.destinations.get(destination);
        this.input.pooledHandshakes++;
      }
      if (!stats) {
        stats = new HandshakeStats();
        this.destinations.set(destination, stats);
      }
    }
    stats.add(e, repeat);
    if (e.error !== undefined) this.failureStats(e.destination).add(upstreamErrorCause(e), 'tls');
    if (this.overallSeries && !Number.isNaN(timeMs)) {
      const sample = { timeMs, resumed: e.resumed, failed: e.error !== undefined, handshakeMs: e.handshakeMs, ticketsLeft: e.ticketsLeft };
      let series = this.series.get(destination);
      if (!series) {
        if (this.series.size >= MAX_SERIES) this.dropQuietestSeries();
        series = new Series(this.axis);
        this.series.set(destination, series);
      }
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

  /** All destinations' failed attempts together. */
  overallUpstreamErrors(): UpstreamErrorStats {
    const all = new UpstreamErrorStats();
    for (const s of this.upstreamErrors.values()) all.merge(s);
    return all;
  }

  private failureStats(destination: string): UpstreamErrorStats {
    let stats = this.upstreamErrors.get(destination);
    if (stats) return stats;
    const key = this.upstreamErrors.size >= (this.options.maxDestinations ?? 20_000) ? OTHER_DESTINATIONS : destination;
    stats = this.upstreamErrors.get(key);
    if (!stats) {
      stats = new UpstreamErrorStats();
      this.upstreamErrors.set(key, stats);
    }
    return stats;
  }

  /** Time and destination filters; a record without a readable time fails a time filter. */
  private passes(time: unknown, destination: string | undefined): boolean {
    const f = this.options.filters;
    if (!f) return true;
    if (f.sinceMs !== undefined || f.untilMs !== undefined) {
      const t = typeof time === 'string' ? Date.parse(time) : NaN;
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

/** The minimum a handshake record needs to be counted; optional fields get safe defaults. */
function isHandshake(r: Record<string, unknown>): r is HandshakeEvent & Record<string, unknown> {
  if (typeof r.destination !== 'string' || typeof r.resumed !== 'boolean' || typeof r.offered !== 'string') return false;
  if (typeof r.ticketsReceived !== 'number') r.ticketsReceived = 0;
  if (typeof r.ticketsLeft !== 'number') r.ticketsLeft = 0;
  if (r.ticketsUnreadable !== undefined && typeof r.ticketsUnreadable !== 'number') delete r.ticketsUnreadable;
  if (typeof r.handshakeMs !== 'number') r.handshakeMs = NaN;
  if (typeof r.reoffered !== 'boolean') r.reoffered = false;
  if (typeof r.servername !== 'string') r.servername = '';
  if (typeof r.listener !== 'string') r.listener = '';
  if (r.time !== undefined && typeof r.time !== 'string') delete r.time;
  if (r.protocol !== undefined && typeof r.protocol !== 'string') delete r.protocol;
  if (r.error !== undefined && typeof r.error !== 'string') r.error = String(r.error);
  if (r.errorCode !== undefined && typeof r.errorCode !== 'string') delete r.errorCode;
  return true;
}

/** A record that starts like one of ours and stops before its closing brace. */
function looksCutOff(line: string): boolean {
  const t = line.trimEnd();
  return t.startsWith('{') && !t.endsWith('}');
}

function increment<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
