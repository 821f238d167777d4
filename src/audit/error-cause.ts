import { causeOfCode } from '../errors/classify.js';
import type { UpstreamErrorCause } from '../errors/causes.js';

/**
 * A failed upstream attempt reduced to one of a few causes, for the report and for metric labels
 * (bounded cardinality). Lines carry the error's own code (`errorCode`, see
 * upstream/error-code.ts), told as a cause by the error table (errors/codes.ts, classify.ts);
 * only lines written before that field existed are classified by their `error` text.
 */
export { UPSTREAM_ERROR_CAUSES, type UpstreamErrorCause } from '../errors/causes.js';
export { causeOfCode } from '../errors/classify.js';

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
