import type { HandshakeEvent } from '../../src/audit/events.js';

const FULL_HANDSHAKE: HandshakeEvent = {
  time: '2026-11-01T10:00:00.000Z',
  event: 'tls.handshake',
  listener: 'l',
  destination: 'mx.a.test:25',
  servername: 'mx.a.test',
  key: 'k',
  protocol: 'TLSv1.3',
  offered: 'none',
  reoffered: false,
  resumed: false,
  fullCause: 'nothing-offered',
  ticketsReceived: 2,
  receivedHashes: [],
  ticketsLeft: 2,
  handshakeMs: 2,
};

/**
 * One hand-written `tls.handshake` audit line for report tests: a full TLS 1.3 handshake to
 * mx.a.test:25 that offered nothing and received 2 tickets, with `over` on top.
 */
export function handshakeLine(over: Partial<HandshakeEvent> = {}): string {
  return JSON.stringify({ ...FULL_HANDSHAKE, ...over } satisfies HandshakeEvent);
}
