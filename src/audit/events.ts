/**
 * The audit log's record types: one JSON object per line. `ticketbooth audit` reads these, so
 * field names are a file format: add fields, do not rename them. No record ever holds a ticket,
 * a key or message content; tickets appear only as 12-hex-character hashes.
 */
import type { FullHandshakeCause, OfferKind } from '../resumption/policy.js';

export interface HandshakeEvent {
  event: 'tls.handshake';
  /** ISO 8601, added by the logger. */
  time?: string;
  listener: string;
  /** host:port of the upstream. */
  destination: string;
  servername: string;
  /** The SMTP server's EHLO name, read before STARTTLS. */
  ehloName?: string;
  /** Short digest of the trust key (cache slot). */
  key: string;
  protocol?: string;
  cipher?: string;
  offered: OfferKind;
  /** Hash of the offered ticket or session. */
  offeredHash?: string;
  /** The offered ticket had been offered before (adaptive reuse). */
  reoffered: boolean;
  resumed: boolean;
  /** Why the handshake was full, when it was. */
  fullCause?: FullHandshakeCause;
  /** Tickets (TLS 1.3) or sessions (TLS 1.2) received on this connection. */
  ticketsReceived: number;
  /** Hashes of what was received, newest last. */
  receivedHashes: string[];
  /** TLS 1.3 tickets left in the slot after this connection. */
  ticketsLeft: number;
  handshakeMs: number;
  /** Set when the handshake failed; everything else then describes the attempt. */
  error?: string;
}

export interface SmtpTransactionEvent {
  event: 'smtp.transaction';
  time?: string;
  listener: string;
  client: string;
  nextHop?: string;
  recipients: number;
  size: number;
  /** The reply code the client got for the message (or for the failure). */
  code: number;
  ms: number;
  /** Envelope addresses, only when the listener is configured to log them. */
  from?: string;
  to?: string[];
  error?: string;
}

export interface ClientRefusedEvent {
  event: 'client.refused';
  time?: string;
  listener: string;
  client: string;
  reason: 'allow-list' | 'connection-limit';
}

export type AuditEvent = HandshakeEvent | SmtpTransactionEvent | ClientRefusedEvent;
