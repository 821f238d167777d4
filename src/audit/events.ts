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
  /** Sessions the server sent that could not be read (so not kept); absent when none. */
  ticketsUnreadable?: number;
  /** Hashes of what was received, newest last. */
  receivedHashes: string[];
  /** TLS 1.3 tickets left in the slot after this connection. */
  ticketsLeft: number;
  handshakeMs: number;
  /** Set when the handshake failed; everything else then describes the attempt. */
  error?: string;
  /** With `error`: the error's own code (`ERR_TLS_CERT_ALTNAME_INVALID`, `ECONNRESET`, `ERR_UPSTREAM_TIMEOUT` ...); see audit/error-cause.ts. */
  errorCode?: string;
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
  /**
   * The client ended the transaction (RSET, EHLO, QUIT, disconnect) before any reply to DATA or to
   * the end of data: `code` is then a RCPT reply, not a verdict on a message (e.g. an address probe).
   */
  abandoned?: boolean;
}

/** allow-list: outside `allow`; connection-limit: `maxConnections` reached; client-limit: `maxConnectionsPerClient` reached by its address. */
export type RefusalReason = 'allow-list' | 'connection-limit' | 'client-limit';

export interface ClientRefusedEvent {
  event: 'client.refused';
  time?: string;
  listener: string;
  client: string;
  reason: RefusalReason;
}

/**
 * A client that was gone (reset) before it could be admitted: its address can no longer be read,
 * so none is claimed, and it is no refusal.
 */
export interface ClientGoneEvent {
  event: 'client.gone';
  time?: string;
  listener: string;
}

/** Where an upstream attempt failed before any TLS handshake started. */
export type UpstreamErrorStage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'injection';

/**
 * One failed upstream attempt that never reached a TLS handshake (a failed handshake is a
 * `tls.handshake` line with `error`). Holds no message content and no credentials.
 */
export interface UpstreamErrorEvent {
  event: 'upstream.error';
  time?: string;
  listener: string;
  /** host:port of the upstream, as in `tls.handshake`. */
  destination: string;
  stage: UpstreamErrorStage;
  /** The error's own code (`ECONNREFUSED`, `ERR_NO_STARTTLS`, `ERR_SMTP_TIMEOUT` ...). */
  errorCode: string;
  error: string;
  /** From the start of the attempt (before connect) to the failure. */
  ms: number;
  /** The cleartext retry that TLS level `may` makes after a failed STARTTLS or handshake. */
  cleartextFallback?: boolean;
}

export type AuditEvent = HandshakeEvent | SmtpTransactionEvent | ClientRefusedEvent | ClientGoneEvent | UpstreamErrorEvent;
