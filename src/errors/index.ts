/**
 * ticketbooth's own errors, after undici's lib/core/errors.js: one base class, and a stable `code`
 * that callers match on (the message is for people and may change). A wrapped error (Node's, with
 * its own code: `ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID` ...) is kept as `cause`; the audit
 * line's `errorCode` is the innermost code (upstream/error-code.ts), so these codes are a file
 * format where nothing more specific is wrapped: add codes, never rename them.
 */
export abstract class TicketboothError extends Error {
  /** One of `Code`: a class cannot throw a code the table (codes.ts) has not given meaning to. */
  abstract readonly code: Code;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Every code ticketbooth's own errors carry: the upstream ones (a failed attempt with a next hop or
 * origin, counted by cause) and the local ones (a config, a command's option, a tlsmgr request, a
 * stored session). codes.ts gives each its meaning, and must list every one.
 */
export type Code = UpstreamErrorCode | LocalErrorCode;

export type LocalErrorCode = 'ERR_CONFIG' | 'ERR_REPORT_OPTION' | 'ERR_TLSMGR_ATTR' | 'ERR_SESSION_UNREADABLE';

/** Where an upstream attempt failed before any TLS handshake started: the audit's `upstream.error` stages (a file format). */
export const UPSTREAM_ERROR_STAGES = ['connect', 'greeting', 'ehlo', 'starttls', 'injection'] as const;
export type UpstreamErrorStage = (typeof UPSTREAM_ERROR_STAGES)[number];

/**
 * How far an upstream attempt got, in the attempt's order. The words before TLS are the audit's
 * (`upstream.error`'s `stage`); `tls` is the handshake (a failed one is a `tls.handshake` line,
 * stage `tls` in the metrics and the report); `auth` and `transaction` follow TLS, and their
 * failures are told in the `smtp.transaction` line.
 */
export type UpstreamStage = UpstreamErrorStage | 'tls' | 'auth' | 'transaction';

const BEFORE_TLS: ReadonlySet<UpstreamStage> = new Set<UpstreamErrorStage>(UPSTREAM_ERROR_STAGES);

/** Whether a stage is one the `upstream.error` line names (a failure before any TLS handshake). */
export function isBeforeTls(stage: UpstreamStage): stage is UpstreamErrorStage {
  return BEFORE_TLS.has(stage);
}

export type UpstreamErrorCode =
  // TCP and TLS: the connect or the handshake failed (Node's error is the cause), timed out, or was closed.
  | 'ERR_UPSTREAM_CONNECT'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_UPSTREAM_TLS'
  | 'ERR_UPSTREAM_CLOSED'
  // DANE: the certificate matched none of the host's usable TLSA records (RFC 7672); the host may not be used (DNSSEC said so).
  | 'ERR_TLSA_MISMATCH'
  | 'ERR_DANE_DEFERRED'
  // An SMTP reply that never came or could not be read: the reader's code (below).
  | SmtpReplyErrorCode
  // The SMTP server said something we cannot go on with.
  | 'ERR_SMTP_GREETING'
  | 'ERR_SMTP_PROTOCOL'
  | 'ERR_NO_STARTTLS'
  | 'ERR_STARTTLS_REFUSED'
  | 'ERR_STARTTLS_INJECTION'
  | 'ERR_SMTP_OUT_OF_STEP'
  | 'ERR_AUTH_NEEDS_TLS'
  | 'ERR_AUTH_NO_MECHANISM'
  | 'ERR_AUTH_FAILED';

/**
 * One failed step with an upstream server: where (`stage`) and what (`code`). The message names
 * the server (host:port) and holds at most its reply, never anything a client sent, never
 * credentials. `replyCode` is the server's reply code when a reply was the failure.
 */
export class UpstreamError extends TicketboothError {
  readonly replyCode?: number;

  constructor(
    message: string,
    readonly stage: UpstreamStage,
    readonly code: UpstreamErrorCode,
    options: ErrorOptions & { replyCode?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.replyCode !== undefined) this.replyCode = options.replyCode;
  }
}

export type SmtpReplyErrorCode = SmtpTimeoutError['code'] | SmtpClosedError['code'] | SmtpSyntaxError['code'] | SmtpTooLongError['code'];

/** No complete SMTP reply within the wait. */
export class SmtpTimeoutError extends TicketboothError {
  readonly code = 'ERR_SMTP_TIMEOUT';
}

/** The server closed or reset the connection before its reply was complete. */
export class SmtpClosedError extends TicketboothError {
  readonly code = 'ERR_SMTP_CLOSED';
}

/** A reply line that is not `NNN text` or `NNN-text`, or a code that changes inside one reply. */
export class SmtpSyntaxError extends TicketboothError {
  readonly code = 'ERR_SMTP_SYNTAX';
}

/** A reply line, or a reply, longer than the reader takes. */
export class SmtpTooLongError extends TicketboothError {
  readonly code = 'ERR_SMTP_TOO_LONG';
}

/** What a reply reader throws. */
export type SmtpReplyError = SmtpTimeoutError | SmtpClosedError | SmtpSyntaxError | SmtpTooLongError;
