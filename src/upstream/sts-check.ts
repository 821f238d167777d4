import { checkServerIdentity, type TLSSocket } from 'node:tls';
import type { StsAudit } from '../audit/events.js';
import { resultTypeOf } from '../mta-sts/result-type.js';
import type { TlsTarget } from './tls-target.js';

type Sts = NonNullable<TlsTarget['sts']>;

/** The handshake line's `sts`, before the outcome is known (no policy: the domain and host alone). */
export function stsAuditOf(s: Sts): StsAudit {
  if (s.mode === 'none') return { domain: s.domain, mxHost: s.mxHost };
  return { domain: s.domain, mode: s.mode, id: s.id, mxHost: s.mxHost, mx: s.mxMatch ? 'match' : 'mismatch' };
}

/**
 * The TLS-RPT result of a completed handshake. Under `enforce` the level was `verify`, so Node
 * checked chain and name: success. Under `testing` nothing was enforced: what `verify` would have
 * said (the chain against the CAs, the MX host name), so the report shows what enforcing would break.
 * Without a policy, a completed handshake is the success.
 */
export function stsResult(socket: TLSSocket, s: Sts): string {
  // No policy: nothing to verify, TLS itself is the success.
  if (s.mode === 'enforce' || s.mode === 'none') return 'success';
  if (!socket.authorized) return resultTypeOf(String(socket.authorizationError ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'));
  const cert = socket.getPeerCertificate();
  return checkServerIdentity(s.mxHost, cert) === undefined ? 'success' : 'certificate-host-mismatch';
}
