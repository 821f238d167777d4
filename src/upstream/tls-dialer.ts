import type { OnReadOpts, Socket } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { AuditLog } from '../audit/audit-log.js';
import type { DaneAudit, HandshakeEvent, StsAudit } from '../audit/events.js';
import { CLOSE_GRACE_MS } from '../net/grace.js';
import { UpstreamError } from '../errors/index.js';
import type { CacheKey } from '../resumption/cache-key.js';
import { fullHandshakeCause, type Offer, type Resumption } from '../resumption/policy.js';
import type { KeyLedger } from '../resumption/key-ledger.js';
import { HandshakeLine } from './handshake-line.js';
import { handshakeOutcome, watchTcp } from './handshake-outcome.js';
import { recordUpstreamError } from './record-failure.js';
import { SessionIntake } from './session-intake.js';
import { prepare, type PreparedTarget, type TlsTarget } from './tls-target.js';

export interface DialContext {
  listener: string;
  cache: Resumption;
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
  const prepared = prepare(target);
  const key = prepared.key;
  ctx.keys?.record(key.id);
  // A store that fails (Redis away) costs a full handshake, never the client's connection.
  const offer = await ctx.cache.offer(key).catch((): Offer => ({ kind: 'none', reoffered: false, emptyBecause: 'empty' }));
  const line = new HandshakeLine(target, ctx.listener, key, offer);
  const socket = openTls(prepared, offer, ctx, line, over, onread);
  const tcp = watchTcp(socket, over, line.event);
  const sessions = new SessionIntake(socket, ctx.cache, key, (got) => line.received(got));
  const writeLine = (): Promise<void> => line.write(ctx.audit, ctx.cache, sessions.stored());
  try {
    await handshakeOutcome(socket, target, line.event, tcp, ctx.handshakeTimeoutMs ?? 15_000);
  } catch (err) {
    socket.destroy();
    ctx.cache.abandoned(offer, tcp.up);
    // No outcome for the cache: a refused connect, a timeout or a bad certificate says nothing
    // about whether the server takes tickets (a restart must not end adaptive reuse there).
    if (!tcp.up) {
      line.skip();
      recordUpstreamError(ctx.audit, { listener: ctx.listener, destination: key.destination, started: line.started }, err as UpstreamError);
    } else {
      line.failed(err);
      await writeLine();
    }
    throw err;
  }
  line.succeeded(socket);
  await noteOutcome(target, ctx.cache, key, offer, line.event);
  writeAfterWindow(socket, ctx.auditWindowMs ?? 1000, writeLine);
  return upstreamTls(socket, line.event, sessions, ctx.closeGraceMs ?? CLOSE_GRACE_MS);
}

/**
 * `tls.connect` with the offered session, on `over` or a new TCP connection. A synchronous failure
 * is the target's (no cipher matches, a cert that does not fit its key): still one audit line, so a
 * misconfiguration is not silent.
 */
function openTls(
  prepared: PreparedTarget,
  offer: Offer,
  ctx: DialContext,
  line: HandshakeLine,
  over?: Socket,
  onread?: OnReadOpts,
): TLSSocket {
  let socket: TLSSocket;
  try {
    // One object per connection: the target's options, then what this connection adds.
    const options: ConnectionOptions & { onread?: OnReadOpts } = { ...prepared.options() };
    if (offer.session) options.session = offer.session;
    if (over) options.socket = over;
    else if (onread) options.onread = onread;
    socket = connect(options);
  } catch (err) {
    ctx.cache.abandoned(offer, over !== undefined);
    line.refused(err, ctx.audit);
    throw new UpstreamError(`${line.event.destination}: ${(err as Error).message}`, 'tls', 'ERR_UPSTREAM_TLS', { cause: err });
  }
  // As for every upstream (tcp-connect.ts): no Nagle; relayed small writes must not wait for an ACK.
  socket.setNoDelay(true);
  // A peer reset must never crash the process: the handshake reports its own errors, and after it
  // whoever relays sees 'close'.
  socket.on('error', () => undefined);
  return socket;
}

/** Tells the cache how the offer went; the line's `fullCause` says why a handshake was full. */
async function noteOutcome(target: TlsTarget, cache: Resumption, key: CacheKey, offer: Offer, event: HandshakeEvent): Promise<void> {
  const result = { resumed: event.resumed, version: event.protocol };
  const cause = await cache.outcome(key, offer, result).catch(() => fullHandshakeCause(offer, result));
  // Nothing to offer because the host's TLSA records just changed: the new set is a new trust key.
  if (cause) event.fullCause = cause === 'nothing-offered' && target.dane?.changed ? 'tlsa-changed' : cause;
}

/** The line goes out after the window (TLS 1.3 tickets come after the handshake) or at close, whichever is first. */
function writeAfterWindow(socket: TLSSocket, windowMs: number, write: () => Promise<void>): void {
  const timer = setTimeout(() => void write(), windowMs);
  timer.unref();
  socket.on('close', () => {
    clearTimeout(timer);
    void write();
  });
}

/** What the caller gets: the socket, how it was made and trusted, and a graceful close. */
function upstreamTls(socket: TLSSocket, event: HandshakeEvent, sessions: SessionIntake, graceMs: number): UpstreamTls {
  let closing: Promise<void> | undefined; // one graceful close, however many parties ask for it
  const tls: UpstreamTls = {
    socket,
    resumed: event.resumed,
    protocol: event.protocol ?? 'unknown',
    close: () => (closing ??= closeGracefully(socket, graceMs)),
    sessionArrived: (maxMs) => sessions.arrived(maxMs),
  };
  if (event.dane) tls.dane = event.dane;
  if (event.sts) tls.sts = event.sts;
  return tls;
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
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume(); // read to the server's FIN
    socket.end();
  });
}
