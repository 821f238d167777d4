import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { HandshakeEvent } from '../audit/events.js';
import { UpstreamError } from '../errors/index.js';
import { checkDane, daneResultOf } from './dane-check.js';
import { stsResult } from './sts-check.js';
import type { TlsTarget } from './tls-target.js';

/**
 * Whether TCP is up yet (a failure before it is at stage `connect`); once it is, notes our address
 * on the line (TLS-RPT's sending-mta-ip; a failed handshake destroys the socket, which then no
 * longer says). Over an existing socket (after STARTTLS) it is up from the start.
 */
export function watchTcp(socket: TLSSocket, over: Socket | undefined, event: HandshakeEvent): { up: boolean } {
  const tcp = { up: over !== undefined };
  const connected = (): void => {
    tcp.up = true;
    const local = (over ?? socket).localAddress;
    if (local) event.sendingIp = local;
  };
  if (tcp.up) connected();
  else socket.on('connect', connected); // emitted once: no once() wrapper needed
  return tcp;
}

/**
 * Resolves when the handshake completed and passed the checks the dialer makes itself (DANE's
 * TLSA match; MTA-STS testing's result), else rejects with what went wrong as an `UpstreamError`:
 * a timeout, an error (refused or unreachable: a connect error), the peer closing, a TLSA mismatch.
 */
export function handshakeOutcome(
  socket: TLSSocket,
  target: TlsTarget,
  event: HandshakeEvent,
  tcp: { readonly up: boolean },
  timeoutMs: number,
): Promise<void> {
  const destination = event.destination;
  const stage = (): 'connect' | 'tls' => (tcp.up ? 'tls' : 'connect');
  return new Promise<void>((resolve, reject) => {
    // Whichever comes first settles; the others are removed, so a later close does not build
    // (and capture a stack for) an error nobody reads, on every connection.
    const settle = (err?: UpstreamError): void => {
      clearTimeout(timer);
      socket.off('secureConnect', onSecure).off('error', onError).off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => {
      settle(new UpstreamError(`TLS handshake with ${destination} timed out`, stage(), 'ERR_UPSTREAM_TIMEOUT'));
    }, timeoutMs);
    const onSecure = (): void => settle(checkSecured(socket, target, event));
    const onError = (err: NodeJS.ErrnoException): void => {
      const code = !tcp.up || err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' ? 'ERR_UPSTREAM_CONNECT' : 'ERR_UPSTREAM_TLS';
      settle(new UpstreamError(`${destination}: ${err.message}`, stage(), code, { cause: err }));
    };
    const onClose = (): void =>
      settle(new UpstreamError(`${destination} closed the connection during the TLS handshake`, stage(), 'ERR_UPSTREAM_CLOSED'));
    // Plain listeners: settle removes all three, whichever fires first.
    socket.on('secureConnect', onSecure).on('error', onError).on('close', onClose);
  });
}

/** After secureConnect: MTA-STS's result, and under DANE the TLSA match (its failure, if any). */
function checkSecured(socket: TLSSocket, target: TlsTarget, event: HandshakeEvent): UpstreamError | undefined {
  if (target.sts && event.sts) event.sts.result = stsResult(socket, target.sts);
  const daneFailure = target.dane && event.dane ? checkDane(socket, target.dane, event.dane) : undefined;
  if (event.dane && !daneFailure) event.dane.result = daneResultOf(event.dane);
  return daneFailure;
}
