import { isIP } from 'node:net';
import type { SmtpTlsConfig, TlsLevel } from '../config/smtp-schema.js';
import type { DaneDecision } from '../dane/decision.js';
import type { InsecureMxPolicy } from '../dane/host-tlsa.js';
import type { TlsTarget } from '../upstream/tls-target.js';

/**
 * Postfix's TLS security levels (smtp_tls_security_level), per route:
 * - none: never STARTTLS;
 * - may: STARTTLS when offered, certificate not checked; a failed handshake is retried once in
 *   cleartext on a new connection to the same host (what Postfix does);
 * - encrypt: TLS required, certificate not checked;
 * - verify: TLS required, chain and the MX host name (mode mx) or relay host checked;
 * - secure: TLS required, chain and the next-hop domain or a name under it (mode mx), or the
 *   relay host (mode relay), checked;
 * - dane, dane-only: per host, from DNSSEC (RFC 7672; dane/decision.ts): TLS authenticated by the
 *   host's TLSA records, or `encrypt`, or `may` (dane only), or the host is deferred.
 * Required levels never fall back: the host counts as failed and the next MX host is tried.
 */
export interface TlsPolicy {
  level: TlsLevel;
  /** PEM text, read at start. */
  ca?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  ciphers?: string;
  /** Key-exchange groups, colon-separated (Node's `ecdhCurve`); Node's default when absent. */
  groups?: string;
  /** Apply the recipient domain's MTA-STS policy (mode mx). */
  mtaSts: boolean;
  /**
   * Under `secure`, how the next-hop name is matched: mode mx also takes names under the domain
   * (Postfix's default smtp_tls_secure_cert_match = nexthop, dot-nexthop); mode relay exactly.
   */
  secureMatch: 'exact' | 'dot-nexthop';
  /** Under `dane`: whether TLSA found behind an unsigned MX RRset applies (Postfix's smtp_tls_dane_insecure_mx_policy). */
  daneInsecureMx: InsecureMxPolicy;
}

/** The level one host gets: the route's, or under a DANE level what DNSSEC decided for it. */
export type HostLevel = Exclude<TlsLevel, 'dane-only'>;

export function isDane(level: TlsLevel): level is 'dane' | 'dane-only' {
  return level === 'dane' || level === 'dane-only';
}

export function hostLevel(policy: TlsPolicy, hop: HopIdentity): HostLevel | 'defer' {
  // A DANE route's host without a decision (an address literal) has no TLSA to ask: as insecure.
  const level = !isDane(policy.level) ? policy.level : (hop.dane?.effective ?? (policy.level === 'dane' ? 'may' : 'defer'));
  // An enforced MTA-STS policy asks for a WebPKI-verified MX host, unless TLSA authenticates it (RFC 8461 2).
  if (hop.sts?.mode === 'enforce' && level !== 'dane' && level !== 'defer' && level !== 'secure') return 'verify';
  return level;
}

export function tlsRequired(level: HostLevel): boolean {
  return level !== 'none' && level !== 'may';
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
    mtaSts: mode === 'mx' && (t.mtaSts ?? (level === 'may' || level === 'dane')),
    secureMatch: mode === 'mx' ? 'dot-nexthop' : 'exact',
    daneInsecureMx: t.daneInsecureMx ?? 'dane',
    ...(t.ca !== undefined ? { ca: readCa(t.ca) } : {}),
    ...(t.minVersion ? { minVersion: t.minVersion } : {}),
    ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
    ...(t.ciphers ? { ciphers: t.ciphers } : {}),
    ...(t.groups ? { groups: t.groups } : {}),
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
  /** Under a DANE level: what DNSSEC decided for this host. */
  dane?: DaneDecision;
  /** Under an MTA-STS policy (enforce or testing) of the next-hop domain. */
  sts?: HopSts;
}

/** The recipient domain's MTA-STS policy as it bears on one MX host; `none`: the domain has none (audit lines only). */
export type HopSts = { domain: string; id: string; mode: 'enforce' | 'testing'; mxMatch: boolean } | { domain: string; mode: 'none' };

/** The dialer's view of one upstream host at its level (undefined for `none`). */
export function tlsTargetFor(policy: TlsPolicy, level: HostLevel, hop: HopIdentity, ehloName: string): TlsTarget | undefined {
  if (level === 'none') return undefined;
  const checked = level === 'verify' || level === 'secure';
  // Under DANE proper the TLSA base domain is SNI and the first DANE-TA name (RFC 7672 2.2.3, 8.1),
  // and the route's `ca` takes no part: only the chain sent and the TLSA records decide.
  const tlsa = hop.dane?.effective === 'dane' ? hop.dane : undefined;
  const servername = tlsa?.baseDomain ?? hop.hostName;
  return {
    host: hop.connect,
    port: hop.port,
    ...(isIP(servername) === 0 ? { servername } : {}),
    ...(policy.ca !== undefined && !tlsa ? { ca: policy.ca } : {}),
    verify: checked ? 'name' : 'none',
    ...(checked ? { verifyName: level === 'secure' ? hop.nextHop : hop.hostName } : {}),
    // DANE-TA's reference names: the base domain and the next hop (Postfix's dane_init); `mxHost` for the audit.
    ...(hop.dane ? { dane: { ...hop.dane, names: [hop.dane.baseDomain, hop.nextHop], mxHost: hop.hostName } } : {}),
    ...(hop.sts ? { sts: { ...hop.sts, mxHost: hop.hostName } } : {}),
    ...(level === 'secure' && policy.secureMatch === 'dot-nexthop' && isIP(hop.nextHop) === 0
      ? { verifyMatch: 'dot-nexthop' as const }
      : {}),
    ...(policy.minVersion ? { minVersion: policy.minVersion } : {}),
    ...(policy.maxVersion ? { maxVersion: policy.maxVersion } : {}),
    ...(policy.ciphers ? { ciphers: policy.ciphers } : {}),
    ...(policy.groups ? { groups: policy.groups } : {}),
    ehloName,
  };
}
