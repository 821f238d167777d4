import { isIP } from 'node:net';
import type { SmtpTlsConfig, TlsLevel } from '../config/smtp-schema.js';
import type { TlsTarget } from '../upstream/tls-target.js';

/**
 * Postfix's TLS security levels (smtp_tls_security_level), per route:
 * - none: never STARTTLS;
 * - may: STARTTLS when offered, certificate not checked; a failed handshake is retried once in
 *   cleartext on a new connection to the same host (what Postfix does);
 * - encrypt: TLS required, certificate not checked;
 * - verify: TLS required, chain and the MX host name (mode mx) or relay host checked;
 * - secure: TLS required, chain and the next-hop domain or a name under it (mode mx), or the
 *   relay host (mode relay), checked.
 * Required levels never fall back: the host counts as failed and the next MX host is tried.
 */
export interface TlsPolicy {
  level: TlsLevel;
  /** PEM text, read at start. */
  ca?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  ciphers?: string;
  /**
   * Under `secure`, how the next-hop name is matched: mode mx also takes names under the domain
   * (Postfix's default smtp_tls_secure_cert_match = nexthop, dot-nexthop); mode relay exactly.
   */
  secureMatch: 'exact' | 'dot-nexthop';
}

export function tlsRequired(level: TlsLevel): boolean {
  return level === 'encrypt' || level === 'verify' || level === 'secure';
}

/** The route's own `tls`, else the listener's, else the default for the mode. */
export function policyFor(
  mode: 'mx' | 'relay',
  listenerTls: SmtpTlsConfig | undefined,
  routeTls: SmtpTlsConfig | undefined,
  readCa: (file: string) => string,
): TlsPolicy {
  const t = { ...listenerTls, ...routeTls };
  const level = t.level ?? (mode === 'mx' ? 'may' : 'secure');
  return {
    level,
    secureMatch: mode === 'mx' ? 'dot-nexthop' : 'exact',
    ...(t.ca !== undefined ? { ca: readCa(t.ca) } : {}),
    ...(t.minVersion ? { minVersion: t.minVersion } : {}),
    ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
    ...(t.ciphers ? { ciphers: t.ciphers } : {}),
  };
}

export interface HopIdentity {
  /** The address (mode mx) or host name (mode relay) to connect to. */
  connect: string;
  port: number;
  /** The MX host name, or the relay host. */
  hostName: string;
  /** The next-hop domain: the recipient domain (mode mx) or the relay host. */
  nextHop: string;
}

/** The dialer's view of one upstream host under a policy (undefined for `none`). */
export function tlsTargetFor(policy: TlsPolicy, hop: HopIdentity, ehloName: string): TlsTarget | undefined {
  if (policy.level === 'none') return undefined;
  const checked = policy.level === 'verify' || policy.level === 'secure';
  return {
    host: hop.connect,
    port: hop.port,
    ...(isIP(hop.hostName) === 0 ? { servername: hop.hostName } : {}),
    ...(policy.ca !== undefined ? { ca: policy.ca } : {}),
    verify: checked ? 'name' : 'none',
    ...(checked ? { verifyName: policy.level === 'secure' ? hop.nextHop : hop.hostName } : {}),
    ...(policy.level === 'secure' && policy.secureMatch === 'dot-nexthop' && isIP(hop.nextHop) === 0
      ? { verifyMatch: 'dot-nexthop' as const }
      : {}),
    ...(policy.minVersion ? { minVersion: policy.minVersion } : {}),
    ...(policy.maxVersion ? { maxVersion: policy.maxVersion } : {}),
    ...(policy.ciphers ? { ciphers: policy.ciphers } : {}),
    ehloName,
  };
}
