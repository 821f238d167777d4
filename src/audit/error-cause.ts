/**
 * A handshake's `error` text reduced to a few causes, for the report and for metric labels
 * (bounded cardinality). The texts come from the dialer's UpstreamTlsError messages and the
 * OpenSSL / Node error strings they wrap.
 */
export type UpstreamErrorCause = 'timeout' | 'connect' | 'closed' | 'certificate' | 'tls';

export const UPSTREAM_ERROR_CAUSES: readonly UpstreamErrorCause[] = ['timeout', 'connect', 'closed', 'certificate', 'tls'];

export function upstreamErrorCause(message: string): UpstreamErrorCause {
  if (/timed out|ETIMEDOUT/i.test(message)) return 'timeout';
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EADDRNOTAVAIL/.test(message)) return 'connect';
  if (/closed the connection|socket hang up/i.test(message)) return 'closed';
  if (/certificate|self[- ]signed|Hostname\/IP|altnames|unable to (get|verify)|CERT_/i.test(message)) return 'certificate';
  return 'tls';
}
