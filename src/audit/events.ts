/**
 * The audit log's record types: one JSON object per line. `ticketbooth audit` reads these, so
 * field names are a file format: add fields, do not rename them. No record ever holds a ticket,
 * a key or message content; tickets appear only as 12-hex-character hashes.
 *
 * Each type is the schema of what ticketbooth writes today; the report reads old lines too, with
 * lenient schemas derived from these (report/records.ts).
 */
import * as z from 'zod';
import { UPSTREAM_ERROR_STAGES, type UpstreamErrorStage } from '../errors/index.js';
/** What a connection offered, and why a handshake was full: words of the file format, which the policy uses. */
export const offerKindSchema = z.enum(['none', 'tls13-ticket', 'tls12-session']);
export type OfferKind = z.infer<typeof offerKindSchema>;
/** `tlsa-changed`: nothing could be offered because the host's TLSA records changed (a new trust key). */
export const fullHandshakeCauseSchema = z.enum(['nothing-offered', 'expired', 'refused', 'version-mismatch', 'tlsa-changed']);
export type FullHandshakeCause = z.infer<typeof fullHandshakeCauseSchema>;

/**
 * Under a DANE level (RFC 7672), what applied to the host and why, in Postfix's words where it has
 * them: `applied` is the level the host got; `auth` how the peer was authenticated (Verified: by
 * TLSA; Trusted: by TLSA behind an unsigned MX RRset, or, below `dane`, a chain to a CA, name not
 * checked; Untrusted: neither); `reason` the machine-readable cause of a failure or of a level
 * below `dane` (a TLSA mismatch: `tlsa-mismatch`, `anchor-not-sent`, `name-mismatch`,
 * `certificate-expired`, `no-certificate`).
 */
export const daneAuditSchema = z.object({
  level: z.enum(['dane', 'dane-only']),
  applied: z.enum(['dane', 'encrypt', 'may', 'defer']),
  mxDnssec: z.enum(['secure', 'insecure']),
  /** usable, unusable (records, none usable), none (securely absent), insecure (not asked or unsigned), failed. */
  tlsa: z.enum(['usable', 'unusable', 'none', 'insecure', 'failed']),
  /** Usable TLSA records (all tried before a mismatch is declared). */
  records: z.number().optional(),
  auth: z.enum(['Verified', 'Trusted', 'Untrusted']).optional(),
  /** The record that matched (`3 1 1 <first hex>`) and the chain depth it matched at. */
  matched: z.string().optional(),
  reason: z.string().optional(),
  /** The next-hop (recipient) domain whose report (TLS-RPT) the host's sessions go to, and the MX host. */
  domain: z.string().optional(),
  mxHost: z.string().optional(),
  /** Where the TLSA records were found when not at the MX host: the end of its CNAME chain (RFC 7672 2.2.3); SNI too. */
  tlsaBase: z.string().optional(),
  /** The host's TLSA records as a zone file writes them (`3 1 1 <hex>`), usable or not: TLS-RPT's `policy-string`. */
  tlsaRecords: z.array(z.string()).optional(),
  /** The outcome in TLS-RPT's result types (RFC 8460 4.3.2), as `sts.result`: `success`, `tlsa-invalid`, `dnssec-invalid`, `dane-required` ... */
  result: z.string().optional(),
});
export type DaneAudit = z.infer<typeof daneAuditSchema>;

/**
 * Under an MTA-STS policy (RFC 8461): the recipient domain, the policy's id and mode, whether the
 * MX host matched its `mx` patterns, and the outcome in TLS-RPT's result types (RFC 8460 4.3.2):
 * `success`, `starttls-not-supported`, `certificate-host-mismatch`, `certificate-expired`,
 * `certificate-not-trusted`, `validation-failure`; under `testing` what enforcing would have met.
 * `fetchFailure`: the policy could not be fetched or read (a cached one may still apply).
 * Without `mode`: the route applies MTA-STS but the domain has no policy (or one in mode none);
 * `mxHost` and `result` then say how TLS went with that host (TLS-RPT's `no-policy-found`).
 */
export const stsAuditSchema = z.object({
  domain: z.string(),
  mode: z.enum(['enforce', 'testing', 'none']).optional(),
  id: z.string().optional(),
  mxHost: z.string().optional(),
  mx: z.enum(['match', 'mismatch']).optional(),
  result: z.string().optional(),
  fetchFailure: z.string().optional(),
});
export type StsAudit = z.infer<typeof stsAuditSchema>;

/**
 * How the certificate was checked on the full handshake (`tlsa`: by the host's TLSA records;
 * `name`: a chain to a trusted CA and a name; `chain`: the chain only; `none`) and the reference
 * names (`.example.org`: any name under it; DANE: the names DANE-TA checks, the MX host and the
 * next-hop domain). On a resumed session: what the session was checked against when it was made.
 */
export const trustCheckSchema = z.object({
  check: z.enum(['tlsa', 'name', 'chain', 'none']),
  names: z.array(z.string()).readonly(),
});
export type TrustCheck = z.infer<typeof trustCheckSchema>;

export const handshakeEventSchema = z.object({
  event: z.literal('tls.handshake'),
  /** ISO 8601, added by the logger. */
  time: z.string().optional(),
  listener: z.string(),
  /** host:port of the upstream. */
  destination: z.string(),
  servername: z.string(),
  /** The SMTP server's EHLO name, read before STARTTLS. */
  ehloName: z.string().optional(),
  /** Short digest of the trust key (cache slot). */
  key: z.string(),
  protocol: z.string().optional(),
  cipher: z.string().optional(),
  offered: offerKindSchema,
  /** Hash of the offered ticket or session. */
  offeredHash: z.string().optional(),
  /** The offered ticket had been offered before (adaptive reuse). */
  reoffered: z.boolean(),
  resumed: z.boolean(),
  /** Why the handshake was full, when it was. */
  fullCause: fullHandshakeCauseSchema.optional(),
  /** Tickets (TLS 1.3) or sessions (TLS 1.2) received on this connection. */
  ticketsReceived: z.number(),
  /** Sessions the server sent that could not be read (so not kept); absent when none. */
  ticketsUnreadable: z.number().optional(),
  /** Hashes of what was received, newest last. */
  receivedHashes: z.array(z.string()),
  /** TLS 1.3 tickets left in the slot after this connection. */
  ticketsLeft: z.number(),
  handshakeMs: z.number(),
  /** Set when the handshake failed; everything else then describes the attempt. */
  error: z.string().optional(),
  /** With `error`: the error's own code (`ERR_TLS_CERT_ALTNAME_INVALID`, `ECONNRESET`, `ERR_UPSTREAM_TIMEOUT` ...); see audit/error-cause.ts. */
  errorCode: z.string().optional(),
  dane: daneAuditSchema.optional(),
  sts: stsAuditSchema.optional(),
  trust: trustCheckSchema.optional(),
  /** Our side's address of the connection (TLS-RPT's `sending-mta-ip`). */
  sendingIp: z.string().optional(),
});
export type HandshakeEvent = z.infer<typeof handshakeEventSchema>;

export const smtpTransactionEventSchema = z.object({
  event: z.literal('smtp.transaction'),
  time: z.string().optional(),
  listener: z.string(),
  client: z.string(),
  nextHop: z.string().optional(),
  recipients: z.number(),
  size: z.number(),
  /** The reply code the client got for the message (or for the failure). */
  code: z.number(),
  ms: z.number(),
  /** Envelope addresses, only when the listener is configured to log them. */
  from: z.string().optional(),
  to: z.array(z.string()).optional(),
  error: z.string().optional(),
  /**
   * The client ended the transaction (RSET, EHLO, QUIT, disconnect) before any reply to DATA or to
   * the end of data: `code` is then a RCPT reply, not a verdict on a message (e.g. an address probe).
   */
  abandoned: z.boolean().optional(),
  /**
   * The upstream connection came from the connection cache (no connect, no handshake): its age in
   * ms and which of its transactions this was (2 = its first reuse). Absent on a new connection.
   */
  reused: z.object({ ageMs: z.number(), use: z.number() }).optional(),
  /**
   * The client's transaction went to this many next hops (an LMTP client's transaction may span
   * several): this line is one hop's part, its `recipients` and `code` that hop's. Absent: one.
   */
  hops: z.number().optional(),
  /**
   * The client asked MAIL … REQUIRETLS (RFC 8689): `passed-on` (the hop was found securely,
   * authenticated and announced REQUIRETLS, which it was given), or why the recipient got 5.7.30:
   * `not-found-securely`, `not-authenticated`, `not-announced`.
   */
  requireTls: z.enum(['passed-on', 'not-found-securely', 'not-authenticated', 'not-announced']).optional(),
  /**
   * The client asked MAIL … X-TLS-REQUIRED=NO (RFC 8689 4.3's `TLS-Required: No`, said before RCPT, where the hop is
   * chosen): the recipient domain's policies this route would have applied and did not (none: it applies neither).
   */
  policyBypass: z.object({ why: z.literal('tls-required-no'), ignored: z.array(z.enum(['mta-sts', 'dane'])) }).optional(),
  /** Under a DANE level: the decision for the host that took the transaction, or (no host) for the last one tried. */
  dane: daneAuditSchema.optional(),
  /** Under MTA-STS (a route with `tls.mtaSts` in mode mx): the policy that applied and the outcome, as for `dane`. */
  sts: stsAuditSchema.optional(),
  /**
   * The upstream connection carried the transaction without TLS: `not-offered` (level may, the
   * server offered no STARTTLS: no TLS attempt, so this line is that session's only trace),
   * `fallback` (level may's cleartext retry after a failed STARTTLS or handshake, which has its own
   * line), `none` (level none). Absent when TLS protected it or no connection was made.
   */
  cleartext: z.enum(['not-offered', 'fallback', 'none']).optional(),
  /**
   * The SMTP front: this hop failed after another hop of the same message took it, so the client
   * heard 250 and ticketbooth holds the message for this hop's recipients (see `smtp.spool`).
   */
  spooled: z.string().optional(),
  /**
   * DSN requests (RFC 3461: recipients with NOTIFY or ORCPT): `passedOn` to a next hop that
   * announces DSN, `local` answered by ticketbooth (a "relayed" notification, the hop lacking DSN).
   */
  dsn: z.object({ passedOn: z.number(), local: z.number() }).optional(),
});
export type SmtpTransactionEvent = z.infer<typeof smtpTransactionEventSchema>;

/** allow-list: outside `allow`; connection-limit: `maxConnections` reached; client-limit: `maxConnectionsPerClient` reached by its address. */
export const refusalReasonSchema = z.enum(['allow-list', 'connection-limit', 'client-limit']);
export type RefusalReason = z.infer<typeof refusalReasonSchema>;

export const clientRefusedEventSchema = z.object({
  event: z.literal('client.refused'),
  time: z.string().optional(),
  listener: z.string(),
  client: z.string(),
  reason: refusalReasonSchema,
});
export type ClientRefusedEvent = z.infer<typeof clientRefusedEventSchema>;

/**
 * A client that was gone (reset) before it could be admitted: its address can no longer be read,
 * so none is claimed, and it is no refusal.
 */
export const clientGoneEventSchema = z.object({
  event: z.literal('client.gone'),
  time: z.string().optional(),
  listener: z.string(),
});
export type ClientGoneEvent = z.infer<typeof clientGoneEventSchema>;

/**
 * A policy fetched (RFC 8461): once per fetch, and once a UTC day for a cached policy in use (so
 * every day's log holds the text of every policy applied that day), with the policy text TLS-RPT
 * reports quote (`policy-string`). Never anything secret: a policy is public.
 */
export const stsPolicyEventSchema = z.object({
  event: z.literal('mta-sts.policy'),
  time: z.string().optional(),
  listener: z.string(),
  domain: z.string(),
  id: z.string(),
  mode: z.enum(['enforce', 'testing', 'none']),
  mx: z.array(z.string()),
  maxAge: z.number(),
  text: z.string(),
});
export type StsPolicyEvent = z.infer<typeof stsPolicyEventSchema>;

/** Where an upstream attempt failed before any TLS handshake started. */
export const upstreamErrorStageSchema = z.enum(UPSTREAM_ERROR_STAGES);
export type { UpstreamErrorStage };

/**
 * One failed upstream attempt that never reached a TLS handshake (a failed handshake is a
 * `tls.handshake` line with `error`). Holds no message content and no credentials.
 */
export const upstreamErrorEventSchema = z.object({
  event: z.literal('upstream.error'),
  time: z.string().optional(),
  listener: z.string(),
  /** host:port of the upstream, as in `tls.handshake`. */
  destination: z.string(),
  stage: upstreamErrorStageSchema,
  /** The error's own code (`ECONNREFUSED`, `ERR_NO_STARTTLS`, `ERR_SMTP_TIMEOUT` ...). */
  errorCode: z.string(),
  error: z.string(),
  /** From the start of the attempt (before connect) to the failure. */
  ms: z.number(),
  /** The cleartext retry that TLS level `may` makes after a failed STARTTLS or handshake. */
  cleartextFallback: z.boolean().optional(),
  /** Under an MTA-STS policy: as in `tls.handshake`, `result` from this failure. */
  sts: stsAuditSchema.optional(),
  /** Under a DANE level: the host's decision, `result` from this failure. */
  dane: daneAuditSchema.optional(),
  /** Our side's address, once connected (TLS-RPT's `sending-mta-ip`). */
  sendingIp: z.string().optional(),
  /** The server's EHLO name, once read. */
  ehloName: z.string().optional(),
});
export type UpstreamErrorEvent = z.infer<typeof upstreamErrorEventSchema>;

/**
 * tlsmgr mode (`ticketbooth tlsmgr`): Postfix's smtp(8) asked for a session (`lookup`) or handed
 * one in (`update`). `cacheId` is a 12-hex digest of Postfix's cache type and serverid;
 * `destination` the serverid's readable head (transport, next hop, port). No session bytes.
 */
export const tlsmgrLookupEventSchema = z.object({
  event: z.literal('tlsmgr.lookup'),
  time: z.string().optional(),
  cacheType: z.string(),
  cacheId: z.string(),
  destination: z.string(),
  vended: offerKindSchema,
  /** A spent ticket handed out again (`reuse: adaptive`). */
  reoffered: z.boolean(),
  ticketHash: z.string().optional(),
  /** With nothing vended: the slot was empty, or held only expired entries. */
  emptyBecause: z.enum(['empty', 'expired']).optional(),
  /** The store failed (Redis away): answered "not found". */
  error: z.string().optional(),
});
export type TlsmgrLookupEvent = z.infer<typeof tlsmgrLookupEventSchema>;

export const tlsmgrUpdateEventSchema = z.object({
  event: z.literal('tlsmgr.update'),
  time: z.string().optional(),
  cacheType: z.string(),
  cacheId: z.string(),
  destination: z.string(),
  /** stored; not-resumable (lifetime 0, expired, no identity); unreadable (not an OpenSSL session). */
  result: z.enum(['stored', 'not-resumable', 'unreadable', 'failed']),
  version: z.enum(['TLSv1.2', 'TLSv1.3', 'other']).optional(),
  ticketHash: z.string().optional(),
  lifetimeHint: z.number().optional(),
  error: z.string().optional(),
});
export type TlsmgrUpdateEvent = z.infer<typeof tlsmgrUpdateEventSchema>;

/**
 * The SMTP front's spool (a message several next hops answered differently, held on disk for the
 * recipients that failed): `held` when ticketbooth took responsibility (before the client's 250),
 * then per recipient `delivered`, `deferred` (tried again later) or `failed`, and per message
 * `notified` (the delivery status notification was taken) or `notify-failed`; `resumed` at start
 * for each entry found on disk. Never an address, never content.
 */
export const smtpSpoolEventSchema = z.object({
  event: z.literal('smtp.spool'),
  time: z.string().optional(),
  listener: z.string(),
  id: z.string(),
  action: z.enum(['held', 'delivered', 'deferred', 'failed', 'notified', 'notify-failed', 'resumed']),
  recipients: z.number(),
  /** The reply that decided it, when one did. */
  code: z.number().optional(),
  error: z.string().optional(),
});
export type SmtpSpoolEvent = z.infer<typeof smtpSpoolEventSchema>;

export const auditEventSchema = z.discriminatedUnion('event', [
  handshakeEventSchema,
  smtpTransactionEventSchema,
  clientRefusedEventSchema,
  clientGoneEventSchema,
  upstreamErrorEventSchema,
  stsPolicyEventSchema,
  tlsmgrLookupEventSchema,
  tlsmgrUpdateEventSchema,
  smtpSpoolEventSchema,
]);
export type AuditEvent = z.infer<typeof auditEventSchema>;
