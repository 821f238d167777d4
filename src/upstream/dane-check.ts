import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { DaneAudit } from '../audit/events.js';
import type { DaneDecision } from '../dane/decision.js';
import { matchChain } from '../dane/match.js';
import { UpstreamError } from '../errors/index.js';
import { resultTypeOf } from '../mta-sts/result-type.js';

/**
 * A host DANE ruled out: its chain matched none of its TLSA records, or DNSSEC deferred it. Carries
 * the host's verdict for the transaction's audit line (errors/ knows nothing of the audit's shapes).
 */
export class DaneError extends UpstreamError {
  readonly dane?: DaneAudit;

  constructor(message: string, code: 'ERR_TLSA_MISMATCH' | 'ERR_DANE_DEFERRED', dane: DaneAudit | undefined) {
    super(message, 'tls', code);
    if (dane !== undefined) this.dane = dane;
  }
}

/**
 * The audit's `dane` object for a decision, before any handshake; with the host (`names`: the MX
 * host, then the next-hop domain), what a TLS-RPT report needs: whose report, which host, which records.
 */
export function daneAuditOf(d: DaneDecision, names?: readonly string[]): DaneAudit {
  return {
    level: d.level,
    applied: d.effective,
    mxDnssec: d.mxDnssec,
    tlsa: d.tlsa,
    ...(d.records.length > 0 ? { records: d.records.length } : {}),
    ...(d.reason ? { reason: d.reason } : {}),
    ...(names?.[1] ? { domain: names[1], mxHost: names[0] } : {}),
    ...(names?.[0] && d.baseDomain !== names[0].toLowerCase() ? { tlsaBase: d.baseDomain } : {}),
    ...(d.presented?.length ? { tlsaRecords: d.presented } : {}),
  };
}

/**
 * TLS-RPT's result (RFC 8460 4.3.2) for a host under a DANE level: a deferred host by why (a bogus
 * or failed TLSA lookup: `dnssec-invalid`; no usable TLSA under `dane-only`: `dane-required`); a
 * handshake that failed the TLSA match by how; TLSA records none of which are usable: `tlsa-invalid`.
 */
export function daneResultOf(a: DaneAudit, errorCode?: string): string {
  if (a.applied === 'defer') return a.reason === 'dane-required' || a.reason === 'insecure-mx' ? 'dane-required' : 'dnssec-invalid';
  if (errorCode !== undefined) {
    if (a.reason === 'certificate-expired') return 'certificate-expired';
    if (a.reason === 'anchor-not-sent') return 'certificate-not-trusted';
    if (a.reason === 'name-mismatch') return 'certificate-host-mismatch';
    return resultTypeOf(errorCode);
  }
  return a.tlsa === 'unusable' ? 'tlsa-invalid' : 'success';
}

/**
 * After a handshake under a DANE level: under `dane`, the chain must match a usable TLSA record
 * (else an error at stage `tls`, so the next MX is tried, never cleartext); under the lower levels
 * only how far the peer was trusted is told. A resumed session needs no match: its trust key holds
 * the TLSA set it was verified under (Node skips its own checks there too); it keeps the class a
 * full handshake would have logged, and `may`/`encrypt` the verify result the session carries.
 */
export function checkDane(
  socket: TLSSocket,
  d: DaneDecision & { names: string[]; mxHost: string },
  audit: DaneAudit,
): DaneError | undefined {
  if (d.effective !== 'dane') {
    audit.auth = socket.authorized ? 'Trusted' : 'Untrusted';
    return undefined;
  }
  if (socket.isSessionReused()) {
    audit.auth = matchedAuth(d);
    return undefined;
  }
  const m = matchChain(peerChain(socket), d.records, d.names);
  if (m.ok) {
    audit.auth = matchedAuth(d);
    audit.matched = `${m.record} depth ${m.depth}`;
    return undefined;
  }
  audit.auth = 'Untrusted';
  audit.reason = m.reason;
  const at = d.baseDomain === d.mxHost ? d.mxHost : `${d.mxHost} (TLSA at ${d.baseDomain})`;
  return new DaneError(`DANE ${at}: ${m.reason}: ${m.detail}`, 'ERR_TLSA_MISMATCH', audit);
}

/** A TLSA match proves the host only when the MX RRset that named it was signed (Postfix logs half-dane as Trusted). */
function matchedAuth(d: DaneDecision): 'Verified' | 'Trusted' {
  return d.insecureMx ? 'Trusted' : 'Verified';
}

/** The chain as the server sent it, leaf first (Node links the sent certificates by issuer). */
function peerChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let c = socket.getPeerCertificate(true);
  while (c?.raw && !seen.has(c.fingerprint256) && chain.length < 16) {
    seen.add(c.fingerprint256);
    chain.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return chain;
}
