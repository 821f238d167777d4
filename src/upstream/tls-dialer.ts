import type { OnReadOpts, Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import type { AuditLog } from '../audit/audit-log.js';
import type { DaneAudit, HandshakeEvent, StsAudit } from '../audit/events.js';
import { CLOSE_GRACE_MS } from '../net/grace.js';
import { UpstreamError } from '../errors/index.js';
import { fullHandshakeCause, type Offer, type ResumptionCache } from '../resumption/policy.js';
import type { KeyLedger } from '../resumption/key-ledger.js';
import { warnUnreadableOnce } from '../resumption/unreadable-warning.js';
import { msSince } from '../util/elapsed.js';
import { resultTypeOf } from '../mta-sts/result-type.js';
import { checkDane, daneAuditOf, daneResultOf } from './dane-check.js';
import { stsAuditOf, stsResult } from './sts-check.js';
import { errorCodeOf } from './error-code.js';
import { recordUpstreamError } from './record-failure.js';
import { connectOptions, keyOf, servernameOf, trustOf, type TlsTarget } from './tls-target.js';

export interface DialContext {
  listener: string;
  cache: ResumptionCache;
  audit: AuditLog;
  /** Give up on a handshake after this long. */
  handshakeTimeoutMs?: number;
  /** After `end()`, how long to wait for the server's close (tickets may still be in flight). */
  closeGraceMs?: number;
  /** Write the audit line this long after the handshake if the connection is still open. */
  auditWindowMs?: number;
  /** The listener's record of the trust keys it dialled under (a reload drops the ones it orphans). */
  keys?: KeyLedger;
}

export interface UpstreamTls {
  socket: TLSSocket;
  /** Under a DANE level: what applied and how the peer was authenticated (the handshake line's `dane`). */
  dane?: DaneAudit;
  /** Under an MTA-STS policy: the handshake line's `sts`, with its result. */
  sts?: StsAudit;
  resumed: boolean;
  protocol: string;
  /** Ends our side and waits for the server's close (or the grace), so late tickets are still stored. */
  close(): Promise<void>;
  /** Resolves true once the server has sent a session or ticket, false after `maxMs` without one. */
  sessionArrived(maxMs: number): Promise<boolean>;
}

/**
 * Opens one TLS connection with what the resumption cache offers, stores every session the
 * server hands out (TLS 1.3 tickets come in `'session'` events after `secureConnect`), tells
 * the cache how it went, and writes one `tls.handshake` audit line. A TCP connection that never
 * came up is no handshake: that attempt is an `upstream.error` line with stage `connect`.
 * With `over`, TLS starts on an existing socket (after STARTTLS); without it, `onread` (if given)
 * takes the plaintext instead of 'data' events (Node has no `onread` over an existing socket).
 * A failure is an `UpstreamError` at stage `tls` (`connect` when TCP never came up); its `code` is
 * the kind, for callers, and the audit line's `errorCode` the wrapped error's own (see error-code.ts).
 */
export async function dialTls(target: TlsTarget, ctx: DialContext, over?: Socket, onread?: OnReadOpts): Promise<UpstreamTls> {
  const key = keyOf(target);
  ctx.keys?.record(key.id);
  // A store that fails (Redis away) costs a full handshake, never the client's connection.
  const offer = await ctx.cache.offer(key).catch((): Offer => ({ kind: 'none', reoffered: false, emptyBecause: 'empty' }));
  const started = performance.now();
  const event: HandshakeEvent = {
    event: 'tls.handshake',
    listener: ctx.listener,
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

  let socket: TLSSocket;
  try {
    socket = connect({
      ...connectOptions(target),
      ...(offer.session ? { session: offer.session } : {}),
      ...(over ? { socket: over } : onread ? { onread } : {}),
    });
    // As for every upstream (tcp-connect.ts): no Nagle; relayed small writes must not wait for an ACK.
    socket.setNoDelay(true);
  } catch (err) {
    // Synchronous failures are the target's (no cipher matches, a cert that does not fit its key):
    // still one audit line, so a misconfiguration is not silent.
    ctx.cache.abandoned(offer, over !== undefined);
    event.error = (err as Error).message;
    event.errorCode = errorCodeOf(err);
    ctx.audit.record(event);
    throw new UpstreamError(`${key.destination}: ${(err as Error).message}`, 'tls', 'ERR_UPSTREAM_TLS', { cause: err });
  }
  // A peer reset must never crash the process: the handshake below reports its own errors, and
  // after it whoever relays sees 'close'.
  socket.on('error', () => undefined);
  // TLS-RPT's sending-mta-ip: read once connected (a failed handshake destroys the socket, which then no longer says).
  const noteSendingIp = (): void => {
    const local = (over ?? socket).localAddress;
    if (local) event.sendingIp = local;
  };
  let tcpUp = over !== undefined;
  if (tcpUp) noteSendingIp();
  else
    socket.once('connect', () => {
      tcpUp = true;
      noteSendingIp();
    });
  const stage = (): 'connect' | 'tls' => (tcpUp ? 'tls' : 'connect');

  // Sessions may arrive before or after secureConnect (TLS 1.2: right after; 1.3: later): chain
  // their storage so the audit line counts all that came before it is written.
  let storing: Promise<unknown> = Promise.resolve();
  let sessionSeen = false;
  const sessionWaiters = new Set<() => void>();
  socket.on('session', (der: Buffer) => {
    sessionSeen = true;
    // Wake waiters on a later turn: this event fires inside TLSWrap's read, where a write made by
    // a waiter resumed now (a microtask) reaches OpenSSL but is never flushed to the socket.
    for (const w of sessionWaiters) setImmediate(w);
    storing = storing
      .then(async () => {
        const got = await ctx.cache.received(key, der);
        if (got.kind === 'stored') {
          event.ticketsReceived++;
          event.receivedHashes.push(got.hash);
        } else if (got.kind === 'unreadable') {
          event.ticketsUnreadable = (event.ticketsUnreadable ?? 0) + 1;
          warnUnreadableOnce(got.reason, key.destination);
        }
      })
      // A store that fails costs this ticket, never the next ones, the connection or the process
      // (an unhandled rejection here would end it).
      .catch(() => undefined);
  });

  let audited = false;
  const writeAudit = async (): Promise<void> => {
    if (audited) return;
    audited = true;
    await storing.catch(() => undefined);
    event.ticketsLeft = await ctx.cache.ticketsLeft(key).catch(() => 0);
    // A copy: tickets arriving later must not change a line winston may not have written yet.
    ctx.audit.record({ ...event, receivedHashes: [...event.receivedHashes] });
  };

  try {
    await new Promise<void>((resolve, reject) => {
      // Whichever comes first settles; the others are removed, so a later close does not build
      // (and capture a stack for) an error nobody reads, on every connection.
      const settle = (err?: UpstreamError): void => {
        clearTimeout(timer);
        socket.off('secureConnect', onSecure).off('error', onError).off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        settle(new UpstreamError(`TLS handshake with ${key.destination} timed out`, stage(), 'ERR_UPSTREAM_TIMEOUT'));
      }, ctx.handshakeTimeoutMs ?? 15_000);
      const onSecure = (): void => {
        if (target.sts && event.sts) event.sts.result = stsResult(socket, target.sts);
        const daneFailure = target.dane && event.dane ? checkDane(socket, target.dane, event.dane) : undefined;
        if (event.dane && !daneFailure) event.dane.result = daneResultOf(event.dane);
        settle(daneFailure);
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        const code = !tcpUp || err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' ? 'ERR_UPSTREAM_CONNECT' : 'ERR_UPSTREAM_TLS';
        settle(new UpstreamError(`${key.destination}: ${err.message}`, stage(), code, { cause: err }));
      };
      const onClose = (): void =>
        settle(new UpstreamError(`${key.destination} closed the connection during the TLS handshake`, stage(), 'ERR_UPSTREAM_CLOSED'));
      socket.once('secureConnect', onSecure).once('error', onError).once('close', onClose);
    });
  } catch (err) {
    socket.destroy();
    ctx.cache.abandoned(offer, tcpUp);
    // No outcome for the cache: a refused connect, a timeout or a bad certificate says nothing
    // about whether the server takes tickets (a restart must not end adaptive reuse there).
    if (!tcpUp) {
      audited = true;
      recordUpstreamError(ctx.audit, { listener: ctx.listener, destination: key.destination, started }, err as UpstreamError);
      throw err;
    }
    event.handshakeMs = msSince(started);
    event.error = (err as Error).message;
    event.errorCode = errorCodeOf(err);
    if (event.sts) event.sts.result = resultTypeOf(event.errorCode);
    if (event.dane) event.dane.result = daneResultOf(event.dane, event.errorCode);
    await writeAudit();
    throw err;
  }

  event.handshakeMs = msSince(started);
  event.resumed = socket.isSessionReused();
  event.protocol = socket.getProtocol() ?? undefined;
  event.cipher = socket.getCipher()?.name;
  const result = { resumed: event.resumed, version: event.protocol };
  const cause = await ctx.cache.outcome(key, offer, result).catch(() => fullHandshakeCause(offer, result));
  // Nothing to offer because the host's TLSA records just changed: the new set is a new trust key.
  if (cause) event.fullCause = cause === 'nothing-offered' && target.dane?.changed ? 'tlsa-changed' : cause;

  const auditTimer = setTimeout(() => void writeAudit(), ctx.auditWindowMs ?? 1000);
  auditTimer.unref();
  socket.once('close', () => {
    clearTimeout(auditTimer);
    void writeAudit();
  });

  let closing: Promise<void> | undefined; // one graceful close, however many parties ask for it
  return {
    socket,
    ...(event.dane ? { dane: event.dane } : {}),
    ...(event.sts ? { sts: event.sts } : {}),
    resumed: event.resumed,
    protocol: event.protocol ?? 'unknown',
    close: () => (closing ??= closeGracefully(socket, ctx.closeGraceMs ?? CLOSE_GRACE_MS)),
    sessionArrived: (maxMs) =>
      sessionSeen
        ? new Promise<boolean>((resolve) => setImmediate(resolve, true))
        : new Promise<boolean>((resolve) => {
            const done = (seen: boolean): void => {
              clearTimeout(timer);
              sessionWaiters.delete(arrived);
              socket.off('close', closed);
              resolve(seen);
            };
            const arrived = (): void => done(true);
            const closed = (): void => done(sessionSeen);
            const timer = setTimeout(() => done(false), maxMs);
            sessionWaiters.add(arrived);
            socket.once('close', closed);
          }),
  };
}

/** How long to wait for the first TLS 1.3 ticket before our first bytes inside TLS (it comes within a round trip). */
const TICKET_WAIT_MS = 50;

/**
 * Resolves once the first bytes inside TLS may go. After a full TLS 1.3 handshake the server sends
 * its tickets first; data sent before they arrive does not acknowledge them, and a server without
 * TCP_NODELAY (Postfix) then holds its reply to that data behind Nagle until our delayed ACK, ~40 ms
 * on Linux (seen in a packet trace): wait for the ticket instead, a round trip at most.
 */
export function ticketsSettled(tls: UpstreamTls): Promise<unknown> {
  return !tls.resumed && tls.protocol === 'TLSv1.3' ? tls.sessionArrived(TICKET_WAIT_MS) : Promise.resolve();
}

/** end(), then wait for the server's close or the grace: destroy() would lose tickets in flight. */
export function closeGracefully(socket: TLSSocket, graceMs: number): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), graceMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume(); // read to the server's FIN
    socket.end();
  });
}
