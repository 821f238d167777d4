import type { DnsResult, SecureResolver } from '../dns/secure-resolver.js';
import { BoundedMap } from '../util/bounded-map.js';
import { isUsable, presentTlsa, tlsaSetDigest, type Tlsa } from './tlsa.js';

/** The route's level: `dane` (opportunistic) or `dane-only` (mandatory), Postfix's words. */
export type DaneLevel = 'dane' | 'dane-only';

/**
 * How the TLSA lookup for one host went:
 * usable: secure records, some usable; unusable: secure records, none usable; none: securely
 * absent (NXDOMAIN/NODATA); insecure: unsigned zone (or MX or addresses not secure, so not asked);
 * failed: SERVFAIL (bogus) or no answer.
 */
export type TlsaState = 'usable' | 'unusable' | 'none' | 'insecure' | 'failed';

/** Machine-readable reasons a DANE host is not used (and the TLS-RPT-minded words of the audit). */
export type DaneReason = 'dnssec-bogus' | 'tlsa-lookup-failed' | 'dane-required' | 'insecure-mx';

/** What a deferral means, for the 451 a client hears (the audit keeps the code). */
const DEFERRED_BECAUSE = {
  'dnssec-bogus': 'the TLSA answer failed DNSSEC validation (bogus)',
  'tlsa-lookup-failed': 'the TLSA lookup failed',
  'dane-required': 'dane-only needs usable TLSA records',
  'insecure-mx': 'dane-only needs a DNSSEC-signed MX RRset',
} as const satisfies Record<DaneReason, string>;

/** `dnssec-bogus: the TLSA answer failed DNSSEC validation (bogus)`; for dane-required, what DNSSEC did say. */
export function deferralText(d: Pick<DaneDecision, 'reason' | 'tlsa'>): string {
  if (!d.reason) return 'no TLSA to authenticate it';
  const found = d.reason === 'dane-required' ? `; ${TLSA_FOUND[d.tlsa]}` : '';
  return `${d.reason}: ${DEFERRED_BECAUSE[d.reason]}${found}`;
}

const TLSA_FOUND = {
  usable: 'TLSA records are usable',
  unusable: 'the TLSA records are all unusable',
  none: 'there are none (signed NXDOMAIN/NODATA)',
  insecure: "the host's addresses or TLSA are not DNSSEC-signed",
  failed: 'the TLSA lookup failed',
} as const satisfies Record<TlsaState, string>;

/** What applies to one MX host under a DANE level, and why: the `dane` object of the audit lines. */
export interface DaneDecision {
  level: DaneLevel;
  /** dane: TLS authenticated by TLSA; encrypt: TLS, unauthenticated; may: opportunistic; defer: the host is not used. */
  effective: 'dane' | 'encrypt' | 'may' | 'defer';
  /** The DNSSEC status of the MX RRset (mode relay: of the relay host's addresses). */
  mxDnssec: 'secure' | 'insecure';
  tlsa: TlsaState;
  /** The usable records (what the peer must match under `dane`). */
  records: Tlsa[];
  /** Every record of the secure TLSA RRset, usable or not, in zone file form (TLS-RPT's `policy-string`). */
  presented?: string[];
  /** Digest of the usable set, for the trust key; absent when there is none. */
  digest?: string;
  /** This host's TLSA set differs from the one seen before (a rollover). */
  changed: boolean;
  /** Why the host is deferred (effective `defer`), or why DANE did not apply. */
  reason?: DaneReason;
  /**
   * The TLSA base domain (RFC 7672 2.2.3): the MX host, or the end of its CNAME chain when the
   * records were found there. SNI and the first DANE-TA reference name under `dane`.
   */
  baseDomain: string;
  /**
   * TLSA applies though the MX RRset was unsigned (`tls.daneInsecureMx: dane`, Postfix's
   * "half-dane"): a mismatch still fails, a match is only Trusted, since whoever forged the MX
   * answer chose the host.
   */
  insecureMx?: true;
  /** `performance.now()` time after which the TLSA answer (and so this decision) is stale. */
  until: number;
}

/**
 * The table of RFC 7672 2.2 as Postfix applies it (smtp_tls_policy.c, dane_init), once
 * dane/host-tlsa.ts has said where TLSA was asked and what came back (`insecure`: not asked, or
 * unsigned): `dane` acts as `may` without records, as `encrypt` with none usable, and `dane-only`
 * defers. A failed or bogus TLSA lookup defers under both: never cleartext once DNS may have said TLS.
 */
export function decide(
  level: DaneLevel,
  mxSecure: boolean,
  tlsa: TlsaState,
  base: Omit<DaneDecision, 'level' | 'effective' | 'mxDnssec' | 'tlsa'>,
): DaneDecision {
  const d = { ...base, level, mxDnssec: mxSecure ? ('secure' as const) : ('insecure' as const), tlsa };
  const only = level === 'dane-only';
  switch (tlsa) {
    case 'usable':
      return { ...d, effective: 'dane' };
    case 'unusable':
      return only ? { ...d, effective: 'defer', reason: 'dane-required' } : { ...d, effective: 'encrypt' };
    case 'failed':
      return { ...d, effective: 'defer', reason: base.reason ?? 'tlsa-lookup-failed' };
    case 'none':
      return only ? { ...d, effective: 'defer', reason: 'dane-required' } : { ...d, effective: 'may' };
    case 'insecure':
      return only ? { ...d, effective: 'defer', reason: mxSecure ? 'dane-required' : 'insecure-mx' } : { ...d, effective: 'may' };
  }
}

interface CachedTlsa {
  state: TlsaState;
  records: Tlsa[];
  presented?: string[];
  digest?: string;
  reason?: DaneReason;
  until: number;
}

/** Kept per TLSA name, at most this many (oldest dropped): bounded whatever domains clients name. */
const MAX_NAMES = 10_000;
/** RFC 7672 leaves caching to the resolver; these bounds keep a rollover visible within 100 s and a flood of lookups away. */
const MIN_TTL_S = 1;
const MAX_TTL_S = 100;

/** TLSA lookups, cached for their TTL (clamped to 1–100 s); remembers each name's last set to tell a rollover. */
export class TlsaLookup {
  private readonly cache = new BoundedMap<string, CachedTlsa>(MAX_NAMES);
  private readonly lastDigest = new BoundedMap<string, string>(MAX_NAMES);

  constructor(private readonly resolver: SecureResolver) {}

  /**
   * Whether `name`'s own CNAME record is signed, when its addresses are not (a signed alias to an
   * unsigned target, RFC 7672 2.2.2). `failed`: no answer, or no longer an alias (Postfix's
   * qname_secure: a lookup error, the host is deferred).
   */
  async aliasSecurity(name: string): Promise<'secure' | 'insecure' | 'failed'> {
    const r = await this.resolver.query(name, 'CNAME');
    if (r.status !== 'NOERROR' || r.records.length === 0) return 'failed';
    return r.secure ? 'secure' : 'insecure';
  }

  /** `_<port>._tcp.<host>` (RFC 6698 3), looked up or from the cache. */
  async lookup(host: string, port: number): Promise<CachedTlsa & { changed: boolean }> {
    const name = `_${port}._tcp.${host.toLowerCase().replace(/\.$/, '')}`;
    const now = performance.now();
    let entry = this.cache.get(name);
    if (!entry || entry.until <= now) {
      entry = stateOf(await this.resolver.query(name, 'TLSA'), now);
      this.cache.set(name, entry);
    }
    const before = this.lastDigest.get(name);
    const changed = entry.digest !== undefined && before !== undefined && before !== entry.digest;
    if (entry.digest !== undefined) {
      this.lastDigest.set(name, entry.digest);
    }
    return { ...entry, changed };
  }
}

function stateOf(r: DnsResult, now: number): CachedTlsa {
  const until = now + Math.min(MAX_TTL_S, Math.max(MIN_TTL_S, r.ttl)) * 1000;
  if (r.status === 'SERVFAIL') return { state: 'failed', records: [], reason: 'dnssec-bogus', until: now + MIN_TTL_S * 1000 };
  if (r.status !== 'NOERROR' && r.status !== 'NXDOMAIN')
    return { state: 'failed', records: [], reason: 'tlsa-lookup-failed', until: now + MIN_TTL_S * 1000 };
  if (!r.secure) return { state: 'insecure', records: [], until };
  if (r.status === 'NXDOMAIN' || r.records.length === 0) return { state: 'none', records: [], until };
  const all = r.records
    .map((a) => a.data as { usage: number; selector: number; matchingType: number; certificate: Buffer })
    .map((t) => ({ usage: t.usage, selector: t.selector, matchingType: t.matchingType, data: t.certificate }));
  const presented = all.map(presentTlsa);
  const usable = all.filter(isUsable);
  if (usable.length === 0) return { state: 'unusable', records: [], presented, until };
  return { state: 'usable', records: usable, presented, digest: tlsaSetDigest(usable), until };
}
