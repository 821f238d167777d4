import type { TlsRptResult, UpstreamErrorCause } from './causes.js';
import { isOurCode, isUpstreamCode, upstreamFacts } from './codes.js';

/**
 * Any code an audit line's `errorCode` may hold (ours, the system's, Node's, OpenSSL's) told as a
 * cause and as a TLS-RPT result type. Ours come from the table (codes.ts); the rest are read here,
 * with the one rule for what is a certificate's failure.
 */

/** The system's codes (libuv, getaddrinfo) and Node's socket code. */
const SYSTEM: Readonly<Record<string, UpstreamErrorCause>> = {
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
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `SELF_SIGNED_CERT_IN_CHAIN`,
 * `CERT_HAS_EXPIRED` ...), Node's `ERR_TLS_CERT_ALTNAME_INVALID`, and the alerts a server sends
 * about a certificate (`ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE`, `..._CERTIFICATE_REQUIRED`).
 */
const CERTIFICATE = /CERT|CRL|^INVALID_CA$|^PATH_LENGTH_EXCEEDED$|^INVALID_PURPOSE$|^HOSTNAME_MISMATCH$|^UNABLE_TO_/;

/** Whether a code (not ours) is a certificate's failure: the one rule for causes, result types and advice. */
export function isCertificateCode(code: string): boolean {
  return !isOurCode(code) && CERTIFICATE.test(code);
}

/** The certificate does not name the host it was asked for (Node's check, or OpenSSL's). */
export function isNameMismatch(code: string): boolean {
  return code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH';
}

export function isExpired(code: string): boolean {
  return code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID';
}

/** The cause of a code: ours by the table, the rest by kind; `other` for a code nobody knows. */
export function causeOfCode(code: string): UpstreamErrorCause {
  if (isUpstreamCode(code)) return upstreamFacts(code).cause;
  if (Object.hasOwn(SYSTEM, code)) return SYSTEM[code];
  if (isCertificateCode(code)) return 'certificate';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'tls';
  return 'other';
}

/**
 * TLS-RPT's result type (RFC 8460 4.3.2) for what an attempt's error code says (none: `success`):
 * the audit lines carry it, so `ticketbooth tlsrpt` counts what happened without reinterpreting errors.
 */
export function resultTypeOf(errorCode: string | undefined): TlsRptResult {
  if (errorCode === undefined) return 'success';
  if (isUpstreamCode(errorCode)) return upstreamFacts(errorCode).resultType;
  if (isNameMismatch(errorCode)) return 'certificate-host-mismatch';
  if (isExpired(errorCode)) return 'certificate-expired';
  return isCertificateCode(errorCode) ? 'certificate-not-trusted' : 'validation-failure';
}
