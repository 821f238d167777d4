import type { DaneRecord, HandshakeRecord, StsRecord, TlsrptRecord, TransactionRecord, UpstreamErrorRecord } from './records.js';

/** RFC 8460 4.3.1: what a session was made under. */
export type PolicyType = 'sts' | 'tlsa' | 'no-policy-found';

/**
 * One TLS session (an attempt to deliver under a policy) as a report counts it: whose report
 * (`domain`, the recipient domain), under which policy, and how it went.
 */
export interface Session {
  domain: string;
  type: PolicyType;
  /** sts: the policy's id (its text comes from the `mta-sts.policy` lines). */
  stsId?: string;
  /** tlsa: the host's TLSA records, zone file form. */
  tlsaRecords?: string[];
  /** `success`, or a result type of RFC 8460 4.3.2. */
  result: string;
  mxHost?: string;
  sendingIp?: string;
  receivingIp?: string;
  helo?: string;
  /** The error's own code (`ERR_TLS_CERT_ALTNAME_INVALID`, a DANE reason ...): TLS-RPT's failure-reason-code. */
  reasonCode?: string;
}

type Placed = Omit<Session, 'result'> & { result?: string };

/**
 * The policy a host's session was made under, from the line's `dane` and `sts`. DANE comes first
 * where it decided (RFC 8461 2: TLSA, where present, wins over MTA-STS): a host authenticated by
 * TLSA, deferred by DNSSEC, or with TLSA records none of which are usable. Its records name the
 * policy; a DANE failure without records (bogus, none under `dane-only`) is `no-policy-found`.
 * Then an MTA-STS policy in enforce or testing; then a route that looked for one and found none.
 */
export function policyOf(sts: StsRecord | undefined, dane: DaneRecord | undefined): Placed | undefined {
  if (dane?.domain && (dane.applied === 'dane' || dane.applied === 'defer' || dane.tlsa === 'unusable')) {
    const base = { domain: dane.domain, ...(dane.mxHost ? { mxHost: dane.mxHost } : {}), ...(dane.result ? { result: dane.result } : {}) };
    return dane.tlsaRecords?.length ? { ...base, type: 'tlsa', tlsaRecords: dane.tlsaRecords } : { ...base, type: 'no-policy-found' };
  }
  if (!sts) return undefined;
  const base = { domain: sts.domain, ...(sts.mxHost ? { mxHost: sts.mxHost } : {}), ...(sts.result ? { result: sts.result } : {}) };
  if ((sts.mode === 'enforce' || sts.mode === 'testing') && sts.id) return { ...base, type: 'sts', stsId: sts.id };
  return { ...base, type: 'no-policy-found' };
}

/** The sessions one audit line stands for: none, one, or (a transaction whose policy fetch failed) two. */
export function sessionsOf(r: TlsrptRecord): Session[] {
  switch (r.event) {
    case 'tls.handshake':
      return handshakeSession(r);
    case 'upstream.error':
      return starttlsFailure(r);
    case 'smtp.transaction':
      return transactionSessions(r);
    default:
      return [];
  }
}

/** Every handshake under a policy is a session: its result says how it went (testing: what enforce would have met). */
function handshakeSession(r: HandshakeRecord): Session[] {
  const p = policyOf(r.sts, r.dane);
  if (!p?.result) return [];
  return [
    done(p, p.result, {
      mxHost: p.mxHost ?? r.servername,
      sendingIp: r.sendingIp,
      receivingIp: hostOf(r.destination),
      helo: r.ehloName,
      reasonCode: p.result === 'success' ? undefined : r.errorCode,
    }),
  ];
}

/** STARTTLS not offered, refused or answered with injected bytes: a session that failed before its handshake. */
function starttlsFailure(r: UpstreamErrorRecord): Session[] {
  if (r.stage !== 'starttls' && r.stage !== 'injection') return [];
  const p = policyOf(r.sts, r.dane);
  if (!p?.result) return [];
  return [
    done(p, p.result, {
      mxHost: p.mxHost,
      sendingIp: r.sendingIp,
      receivingIp: hostOf(r.destination),
      helo: r.ehloName,
      reasonCode: r.errorCode,
    }),
  ];
}

/**
 * A transaction line is a session only where no other line is: on a new connection (not `reused`)
 * that made no TLS attempt (`cleartext: not-offered`), or when the host was never connected to (a
 * DANE deferral; an enforced policy none of whose MX hosts match, RFC 8461 4.1). A policy fetch
 * that failed is one more failed session, the attempt to get the policy (RFC 8460 4.3.2.2).
 */
function transactionSessions(r: TransactionRecord): Session[] {
  if (r.reused) return [];
  const out: Session[] = [];
  const p = policyOf(r.sts, r.dane);
  if (p && r.dane?.applied === 'defer' && r.dane.domain)
    out.push(done(p, p.result ?? 'dnssec-invalid', { mxHost: p.mxHost, reasonCode: r.dane.reason }));
  else if (p?.type === 'sts' && r.sts?.mode === 'enforce' && r.sts.mx === 'mismatch')
    out.push(done(p, 'validation-failure', { reasonCode: 'mx-mismatch' }));
  else if (p && r.cleartext === 'not-offered')
    out.push(done(p, 'starttls-not-supported', { mxHost: p.mxHost, receivingIp: hostOf(r.nextHop) }));
  const fetch = r.sts?.fetchFailure;
  if (r.sts && fetch) {
    const cached = r.sts.mode === 'enforce' || r.sts.mode === 'testing';
    const policy: Placed =
      cached && r.sts.id ? { domain: r.sts.domain, type: 'sts', stsId: r.sts.id } : { domain: r.sts.domain, type: 'no-policy-found' };
    out.push(done(policy, fetch, {}));
  }
  return out;
}

function done(
  p: Placed,
  result: string,
  seen: Partial<Record<'mxHost' | 'sendingIp' | 'receivingIp' | 'helo' | 'reasonCode', string>>,
): Session {
  const s: Session = { domain: p.domain.toLowerCase(), type: p.type, result };
  if (p.stsId) s.stsId = p.stsId;
  if (p.tlsaRecords) s.tlsaRecords = p.tlsaRecords;
  for (const [k, v] of Object.entries(seen)) if (v) s[k as keyof typeof seen] = v;
  return s;
}

/** `127.0.0.2` of `127.0.0.2:25`, `2001:db8::1` of `[2001:db8::1]:25`, `10.0.0.1` of `mx.example[10.0.0.1]:25`; a name is not an address. */
function hostOf(destination: string | undefined): string | undefined {
  if (!destination) return undefined;
  const m = /\[([0-9a-fA-F:.]+)\]:\d+$/.exec(destination) ?? /^([0-9.]+):\d+$/.exec(destination);
  return m?.[1];
}
