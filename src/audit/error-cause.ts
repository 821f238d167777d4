/**
 * A failed upstream attempt reduced to one of a few causes, for the report and for metric labels
 * (bounded cardinality). The one place that knows which code means what: lines carry the
 * error's own code (`errorCode`, see upstream/error-code.ts); only lines written before that
 * field existed are classified by their `error` text.
 */
export type UpstreamErrorCause = 'connect' | 'timeout' | 'closed' | 'certificate' | 'tls' | 'protocol' | 'other';

export const UPSTREAM_ERROR_CAUSES: readonly UpstreamErrorCause[] = [
  'connect',
  'timeout',
  'closed',
  'certificate',
  'tls',
  'protocol',
  'other',
];

const BY_CODE: Record<string, UpstreamErrorCause> = {
  // ours
  ERR_UPSTREAM_TIMEOUT: 'timeout',
  ERR_SMTP_TIMEOUT: 'timeout',
  ERR_UPSTREAM_CONNECT: 'connect',
  ERR_UPSTREAM_CLOSED: 'closed',
  ERR_SMTP_CLOSED: 'closed',
  ERR_UPSTREAM_TLS: 'tls',
  // DANE: the chain failed its TLSA records, as a failed PKIX check is a certificate's failure;
  // a host DNSSEC ruled out could not be authenticated either (no connection: only its
  // transaction line and notice tell it, so no report column of its own).
  ERR_TLSA_MISMATCH: 'certificate',
  ERR_DANE_DEFERRED: 'certificate',
  // The server said something we cannot go on with (SMTP before TLS).
  ERR_SMTP_GREETING: 'protocol',
  ERR_SMTP_PROTOCOL: 'protocol',
  ERR_SMTP_SYNTAX: 'protocol',
  ERR_SMTP_TOO_LONG: 'protocol',
  ERR_NO_STARTTLS: 'protocol',
  ERR_STARTTLS_REFUSED: 'protocol',
  ERR_STARTTLS_INJECTION: 'protocol',
  // the system's
  ETIMEDOUT: 'timeout',
  ECONNREFUSED: 'connect',
  EHOSTUNREACH: 'connect',
  EHOSTDOWN: 'connect',
  ENETUNREACH: 'connect',
  ENETDOWN: 'connect',
  EADDRNOTAVAIL: 'connect',
  ENOTFOUND: 'connect',
  EAI_AGAIN: 'connect',
  EAI_FAIL: 'connect',
  ECONNRESET: 'closed',
  ECONNABORTED: 'closed',
  EPIPE: 'closed',
  ERR_SOCKET_CLOSED: 'closed',
  EPROTO: 'tls',
};

/**
 * OpenSSL's certificate verification results as Node names them (`X509_V_ERR_` dropped:
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED` ...), Node's
 * `ERR_TLS_CERT_ALTNAME_INVALID`, and the alerts a server sends about a certificate
 * (`ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE`, `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`).
 */
const CERTIFICATE = /CERT|CRL|^INVALID_CA$|^PATH_LENGTH_EXCEEDED$|^INVALID_PURPOSE$|^HOSTNAME_MISMATCH$|^UNABLE_TO_/;

export function causeOfCode(code: string): UpstreamErrorCause {
  const known = BY_CODE[code];
  if (known) return known;
  if (CERTIFICATE.test(code)) return 'certificate';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'tls';
  return 'other';
}

/** The cause of a failed `tls.handshake` or of an `upstream.error` line. */
export function upstreamErrorCause(e: { errorCode?: unknown; error?: unknown }): UpstreamErrorCause {
  if (typeof e.errorCode === 'string' && e.errorCode !== '') return causeOfCode(e.errorCode);
  return typeof e.error === 'string' ? causeOfText(e.error) : 'other';
}

/** For lines without `errorCode`: the dialer's messages and the OpenSSL / Node texts they wrapped. */
function causeOfText(message: string): UpstreamErrorCause {
  if (/timed out|ETIMEDOUT/i.test(message)) return 'timeout';
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL/.test(message)) return 'connect';
  if (/ECONNRESET|closed the connection|socket hang up|socket disconnected/i.test(message)) return 'closed';
  if (/certificate|self[- ]signed|Hostname\/IP|altnames|unable to (get|verify)|CERT_/i.test(message)) return 'certificate';
  return 'tls';
}
