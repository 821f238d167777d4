import type { TLSSocket } from 'node:tls';
import type { AuditLog } from '../audit/audit-log.js';
import type { HandshakeEvent } from '../audit/events.js';
import type { CacheKey } from '../resumption/cache-key.js';
import type { Offer, Received, Resumption } from '../resumption/policy.js';
import { warnUnreadableOnce } from '../resumption/unreadable-warning.js';
import { msSince } from '../util/elapsed.js';
import { resultTypeOf } from '../mta-sts/result-type.js';
import { daneAuditOf, daneResultOf } from './dane-check.js';
import { stsAuditOf } from './sts-check.js';
import { errorCodeOf } from './error-code.js';
import { servernameOf, trustOf, type TlsTarget } from './tls-target.js';

/**
 * The `tls.handshake` audit line of one dial: filled in as the handshake goes, written once (a
 * failure before TCP came up is an `upstream.error` line instead: `skip`).
 */
export class HandshakeLine {
  readonly event: HandshakeEvent;
  /** `performance.now()` when the dial began, after the offer. */
  readonly started = performance.now();
  private written = false;

  constructor(
    target: TlsTarget,
    listener: string,
    private readonly key: CacheKey,
    offer: Offer,
  ) {
    this.event = {
      event: 'tls.handshake',
      listener,
      destination: key.destination,
      servername: servernameOf(target),
      ...(target.ehloName ? { ehloName: target.ehloName } : {}),
      key: key.short,
      offered: offer.kind,
      ...(offer.hash ? { offeredHash: offer.hash } : {}),
      reoffered: offer.reoffered,
      resumed: false,
      ticketsReceived: 0,
      receivedHashes: [],
      ticketsLeft: 0,
      handshakeMs: 0,
      ...(target.dane ? { dane: daneAuditOf(target.dane, [target.dane.mxHost, target.dane.names[1]]) } : {}),
      ...(target.sts ? { sts: stsAuditOf(target.sts) } : {}),
      trust: trustOf(target),
    };
  }

  /** Counts a session the server handed out, as the store took it. */
  received(got: Received): void {
    if (got.kind === 'stored') {
      this.event.ticketsReceived++;
      this.event.receivedHashes.push(got.hash);
    } else if (got.kind === 'unreadable') {
      this.event.ticketsUnreadable = (this.event.ticketsUnreadable ?? 0) + 1;
      warnUnreadableOnce(got.reason, this.key.destination);
    }
  }

  /** The handshake failed (after TCP came up): the error, and the TLS-RPT results it implies. */
  failed(err: unknown): void {
    const e = this.event;
    e.handshakeMs = msSince(this.started);
    e.error = (err as Error).message;
    e.errorCode = errorCodeOf(err);
    if (e.sts) e.sts.result = resultTypeOf(e.errorCode);
    if (e.dane) e.dane.result = daneResultOf(e.dane, e.errorCode);
  }

  /** The handshake completed: how. */
  succeeded(socket: TLSSocket): void {
    const e = this.event;
    e.handshakeMs = msSince(this.started);
    e.resumed = socket.isSessionReused();
    e.protocol = socket.getProtocol() ?? undefined;
    e.cipher = socket.getCipher()?.name;
  }

  /** Written elsewhere or not at all. */
  skip(): void {
    this.written = true;
  }

  /** Refused before any byte went out (no cipher matches, a certificate that does not fit its key): written at once. */
  refused(err: unknown, audit: AuditLog): void {
    this.written = true;
    this.event.error = (err as Error).message;
    this.event.errorCode = errorCodeOf(err);
    audit.record(this.event);
  }

  /** Writes the line once, after the sessions received so far are stored (`stored`), with what the slot holds then. */
  write(audit: AuditLog, cache: Resumption, stored: Promise<unknown>): Promise<void> {
    if (this.written) return Promise.resolve();
    this.written = true;
    // Held by the log: closing it (a stop, a worker's exit) waits for this line, which waits for the store.
    return audit.hold(this.compose(audit, cache, stored));
  }

  private async compose(audit: AuditLog, cache: Resumption, stored: Promise<unknown>): Promise<void> {
    await stored.catch(() => undefined);
    this.event.ticketsLeft = await cache.ticketsLeft(this.key).catch(() => 0);
    // A copy: tickets arriving later must not change a line a subscriber (a worker's batch) still holds.
    audit.record({ ...this.event, receivedHashes: [...this.event.receivedHashes] });
  }
}
