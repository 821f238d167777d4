import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditLog } from '../audit/audit-log.js';
import { UPSTREAM_ERROR_CAUSES, upstreamErrorCause } from '../audit/error-cause.js';
import { UPSTREAM_ERROR_STAGES } from '../errors/index.js';
import type { AuditEvent, HandshakeEvent } from '../audit/events.js';
import type { ListenerView } from '../listeners/listener.js';
import type { StoreHealth } from '../resumption/store.js';
import type { DestinationClassifier } from './destination-class.js';

/** What a primary tells of its workers. */
export interface WorkerFigures {
  running(): number;
  /** What went wrong, by kind (each also said on stderr). */
  trouble(): Readonly<Record<string, number>>;
  /** Audit events workers dropped because the primary did not take them (bounded memory). */
  auditDropped(): number;
}

export interface MetricsSources {
  audit: AuditLog;
  store: StoreHealth;
  listeners: readonly ListenerView[];
  classify: DestinationClassifier;
  /** Brings `listeners` up to date before a scrape reads them (a primary asks its workers). */
  refresh?: () => Promise<void>;
  /** Worker processes, when `workers` is above 1. */
  workers?: WorkerFigures;
}

/** The counters fed by audit events, one row each: the names and labels dashboards and tests read. */
const EVENT_COUNTERS = {
  handshakes: {
    name: 'ticketbooth_tls_handshakes_total',
    help: 'Upstream TLS handshakes completed, by what was offered and whether it resumed',
    labelNames: ['listener', 'destination_class', 'protocol', 'offered', 'resumed'],
  },
  fullHandshakes: {
    name: 'ticketbooth_tls_full_handshakes_total',
    help: 'Full (not resumed) upstream handshakes by cause: nothing-offered, expired, refused, version-mismatch',
    labelNames: ['listener', 'destination_class', 'cause'],
  },
  ticketsReceived: {
    name: 'ticketbooth_tls_tickets_received_total',
    help: 'TLS 1.3 tickets and TLS 1.2 sessions received from upstreams and stored',
    labelNames: ['listener', 'destination_class'],
  },
  sessionsUnreadable: {
    name: 'ticketbooth_sessions_unreadable_total',
    help: 'Sessions or tickets received from upstreams that could not be read, so were not kept (resumption is off there)',
    labelNames: ['listener'],
  },
  reoffers: {
    name: 'ticketbooth_tls_ticket_reoffers_total',
    help: 'Spent TLS 1.3 tickets offered again (reuse: adaptive), by whether the server resumed',
    labelNames: ['listener', 'destination_class', 'resumed'],
  },
  upstreamErrors: {
    name: 'ticketbooth_upstream_errors_total',
    help:
      `Failed upstream attempts by cause (${UPSTREAM_ERROR_CAUSES.join(', ')}) and stage ` +
      `(${UPSTREAM_ERROR_STAGES.join(', ')}; tls for a failed handshake)`,
    labelNames: ['listener', 'destination_class', 'cause', 'stage'],
  },
  smtpTransactions: {
    name: 'ticketbooth_smtp_transactions_total',
    help: 'SMTP transactions by the reply class the client got (2xx, 4xx, 5xx), or abandoned by the client after a 2xx RCPT',
    labelNames: ['listener', 'result'],
  },
  daneTransactions: {
    name: 'ticketbooth_smtp_dane_total',
    help:
      'SMTP transactions on DANE routes by the level the host got (dane, encrypt, may, defer) and the outcome ' +
      '(Verified, Trusted, Untrusted, or the reason a host was not used: tlsa-mismatch, dnssec-bogus, tlsa-lookup-failed, dane-required ...)',
    labelNames: ['listener', 'applied', 'outcome'],
  },
  requireTls: {
    name: 'ticketbooth_smtp_requiretls_total',
    help:
      'SMTP transactions whose client asked REQUIRETLS (RFC 8689), by outcome: passed-on, or why the recipient got 5.7.30 ' +
      '(not-found-securely, not-authenticated, not-announced)',
    labelNames: ['listener', 'result'],
  },
  clientsRefused: {
    name: 'ticketbooth_clients_refused_total',
    help: 'Client connections refused (allow-list, connection-limit)',
    labelNames: ['listener', 'reason'],
  },
  spool: {
    name: 'ticketbooth_smtp_spool_total',
    help:
      'The SMTP front holding messages some next hops took and others refused: held (messages), then delivered, deferred ' +
      'and failed (recipients), notified and notify-failed (delivery status notifications), resumed (entries found at start)',
    labelNames: ['listener', 'action'],
  },
  dsn: {
    name: 'ticketbooth_smtp_dsn_total',
    help: 'Recipients that asked for DSN (RFC 3461 NOTIFY/ORCPT): passed-on to a next hop announcing DSN, or local (a "relayed" notification)',
    labelNames: ['listener', 'handled'],
  },
  policyBypass: {
    name: 'ticketbooth_smtp_policy_bypass_total',
    help:
      'SMTP transactions whose client asked TLS-Required: No (MAIL … X-TLS-REQUIRED=NO, RFC 8689 4.3), by the recipient ' +
      'policies the route set aside for it: mta-sts+dane, mta-sts, none',
    labelNames: ['listener', 'ignored'],
  },
} as const satisfies Record<string, { name: string; help: string; labelNames: readonly string[] }>;

type EventCounters = { [K in keyof typeof EVENT_COUNTERS]: Counter<(typeof EVENT_COUNTERS)[K]['labelNames'][number]> };

/**
 * Prometheus metrics from the audit events (every handshake, SMTP transaction and refusal already
 * passes through AuditLog's emitter, so nothing else needs to know about metrics) and from the
 * store and listeners, read at scrape time. One registry per instance: two services in one
 * process (tests) do not share counters.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly count: EventCounters;
  private readonly handshakeSeconds: Histogram<'listener' | 'resumed'>;
  private readonly onEvent = (e: AuditEvent): void => this.observe(e);

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    this.count = Object.fromEntries(
      Object.entries(EVENT_COUNTERS).map(([field, c]) => [field, new Counter({ ...c, labelNames: [...c.labelNames], registers })]),
    ) as EventCounters;
    this.handshakeSeconds = new Histogram({
      name: 'ticketbooth_tls_handshake_duration_seconds',
      help: 'Upstream TLS handshake time (connect to secure), full vs resumed',
      labelNames: ['listener', 'resumed'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    // Zero from the start, so a rate or an alert on it works before the first unreadable session.
    for (const l of sources.listeners) this.count.sessionsUnreadable.inc({ listener: l.name }, 0);
    storeMetrics(sources.store, registers);
    listenerMetrics(sources.listeners, registers, shared(sources.refresh));
    if (sources.workers) workerMetrics(sources.workers, registers);
    auditMetrics(sources.audit, sources.workers, registers);
    collectDefaultMetrics({ register: this.registry });
    sources.audit.on('event', this.onEvent);
  }

  /** Stops listening to the audit log. */
  close(): void {
    this.sources.audit.off('event', this.onEvent);
  }

  private observe(e: AuditEvent): void {
    switch (e.event) {
      case 'tls.handshake':
        return this.observeHandshake(e);
      case 'smtp.transaction':
        // A probe (MAIL, RCPT 250, RSET) is no delivery; an abandon after a 4xx/5xx stays a failure.
        this.count.smtpTransactions.inc({
          listener: e.listener,
          result: e.abandoned && e.code < 400 ? 'abandoned' : `${Math.floor(e.code / 100)}xx`,
        });
        if (e.dane)
          this.count.daneTransactions.inc({
            listener: e.listener,
            applied: e.dane.applied,
            outcome: e.dane.reason ?? e.dane.auth ?? 'none',
          });
        if (e.requireTls) this.count.requireTls.inc({ listener: e.listener, result: e.requireTls });
        if (e.policyBypass) this.count.policyBypass.inc({ listener: e.listener, ignored: e.policyBypass.ignored.join('+') || 'none' });
        if (e.dsn) {
          if (e.dsn.passedOn > 0) this.count.dsn.inc({ listener: e.listener, handled: 'passed-on' }, e.dsn.passedOn);
          if (e.dsn.local > 0) this.count.dsn.inc({ listener: e.listener, handled: 'local' }, e.dsn.local);
        }
        return;
      case 'smtp.spool':
        this.count.spool.inc({ listener: e.listener, action: e.action });
        return;
      case 'client.refused':
        this.count.clientsRefused.inc({ listener: e.listener, reason: e.reason });
        return;
      case 'upstream.error':
        this.count.upstreamErrors.inc({
          listener: e.listener,
          destination_class: this.sources.classify(e.listener, e.destination),
          cause: upstreamErrorCause(e),
          stage: e.stage,
        });
        return;
    }
  }

  private observeHandshake(e: HandshakeEvent): void {
    const base = { listener: e.listener, destination_class: this.sources.classify(e.listener, e.destination) };
    if (e.error !== undefined) {
      this.count.upstreamErrors.inc({ ...base, cause: upstreamErrorCause(e), stage: 'tls' });
      return;
    }
    const resumed = String(e.resumed);
    const protocol = e.protocol === 'TLSv1.3' || e.protocol === 'TLSv1.2' ? e.protocol : 'other';
    this.count.handshakes.inc({ ...base, protocol, offered: e.offered, resumed });
    if (!e.resumed) this.count.fullHandshakes.inc({ ...base, cause: e.fullCause ?? 'unknown' });
    if (e.ticketsReceived > 0) this.count.ticketsReceived.inc(base, e.ticketsReceived);
    if (e.ticketsUnreadable) this.count.sessionsUnreadable.inc({ listener: e.listener }, e.ticketsUnreadable);
    if (e.reoffered) this.count.reoffers.inc({ ...base, resumed });
    this.handshakeSeconds.observe({ listener: e.listener, resumed }, e.handshakeMs / 1000);
  }
}

/** The store's size, errors and dropped entries, read at scrape time. */
function storeMetrics(store: StoreHealth, registers: Registry[]): void {
  // Both store gauges come from one size() (not cheap on Redis): callers at the same scrape share it.
  let counting: Promise<{ destinations: number; tickets: number }> | undefined;
  const size = (): Promise<{ destinations: number; tickets: number }> => (counting ??= store.size().finally(() => (counting = undefined)));
  const storeGauge = (name: string, help: string, of: 'tickets' | 'destinations'): Gauge =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set((await size())[of]);
      },
    });
  storeGauge('ticketbooth_tickets_cached', 'TLS 1.3 tickets held in the store, all destinations', 'tickets');
  storeGauge('ticketbooth_destinations_cached', 'Destinations (trust keys) with a slot in the store', 'destinations');
  new Counter({
    name: 'ticketbooth_store_errors_total',
    help: 'Ticket store operations that failed (Redis unreachable, failing over or too slow); each costs resumption, never a connection',
    registers,
    collect() {
      this.reset();
      this.inc(store.errors ?? 0);
    },
  });
  new Counter({
    name: 'ticketbooth_store_dropped_total',
    help:
      'Store entries read back and dropped unopened, never offered: unknown-key (sealed under a key cache.store.seal.keys ' +
      'does not list), unauthentic (altered or moved), unsealed (clear where seal is set), sealed (sealed where it is not)',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(store.dropped ?? {})) this.inc({ reason }, n);
    },
  });
}

/** Per listener: connections being served and the SMTP connection cache, read at scrape time. */
function listenerMetrics(listeners: readonly ListenerView[], registers: Registry[], refresh: () => Promise<void>): void {
  // Read at each scrape: a reload replaces the listeners, a worker's first stats bring its pools.
  const pooled = (): ListenerView[] => listeners.filter((l) => l.upstreamPool !== undefined);
  new Gauge({
    name: 'ticketbooth_active_connections',
    help: 'Client connections being served, per listener',
    labelNames: ['listener'],
    registers,
    async collect() {
      await refresh();
      for (const l of listeners) this.set({ listener: l.name }, l.activeConnections);
    },
  });
  new Counter({
    name: 'ticketbooth_upstream_pool_total',
    help:
      'Shared upstream connections (the SMTP connection cache) by event: pooled (kept after a transaction), reused, ' +
      'probe-failed (RSET before reuse failed; a new connection was made), expired (idle limit), retired (age or use limit), ' +
      'evicted (per-hop or total cap)',
    labelNames: ['listener', 'event'],
    registers,
    async collect() {
      await refresh();
      this.reset();
      for (const l of pooled())
        for (const [event, n] of Object.entries(l.upstreamPool!.stats)) this.inc({ listener: l.name, event: kebab(event) }, n);
    },
  });
  new Gauge({
    name: 'ticketbooth_upstream_pool_idle',
    help: 'Shared upstream connections waiting idle for their next use, per listener',
    labelNames: ['listener'],
    registers,
    async collect() {
      await refresh();
      for (const l of pooled()) this.set({ listener: l.name }, l.upstreamPool!.idle);
    },
  });
}

/** The worker processes serving the listeners (`workers` above 1). */
function workerMetrics(workers: WorkerFigures, registers: Registry[]): void {
  new Gauge({
    name: 'ticketbooth_workers',
    help: 'Worker processes serving the listeners (workers above 1)',
    registers,
    collect() {
      this.set(workers.running());
    },
  });
  new Counter({
    name: 'ticketbooth_worker_trouble_total',
    help: `Worker trouble by kind (${Object.keys(workers.trouble()).join(', ')}); each also said on stderr`,
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      for (const [kind, n] of Object.entries(workers.trouble())) this.inc({ kind }, n);
    },
  });
}

/** Audit lines dropped to keep memory bounded: by the file (a slow disk) or by workers (a busy primary). */
function auditMetrics(audit: AuditLog, workers: WorkerFigures | undefined, registers: Registry[]): void {
  new Counter({
    name: 'ticketbooth_audit_lines_dropped_total',
    help: 'Audit lines dropped because they were not taken in time, by where: file (the disk), worker (the primary); each said on stderr',
    labelNames: ['where'],
    registers,
    collect() {
      this.reset();
      this.inc({ where: 'file' }, audit.dropped);
      if (workers) this.inc({ where: 'worker' }, workers.auditDropped());
    },
  });
}

/** One refresh shared by the collectors of one scrape (they run together). */
function shared(refresh: (() => Promise<void>) | undefined): () => Promise<void> {
  if (!refresh) return () => Promise.resolve();
  let running: Promise<void> | undefined;
  return () => (running ??= refresh().finally(() => (running = undefined)));
}

/** `probeFailed` as a label value: `probe-failed`. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
