import { createHash } from 'node:crypto';

/** One TLSA record (RFC 6698 2.1). */
export interface Tlsa {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

/** The digest length each matching type implies (0: the full item, any length). */
const DIGEST_LENGTH: Readonly<Record<number, number>> = { 1: 32, 2: 64 };

/**
 * Usable for SMTP (RFC 7672 3.1): DANE-TA(2) or DANE-EE(3), selector Cert(0) or SPKI(1), matching
 * Full(0), SHA2-256(1) or SHA2-512(2), with data of the length the matching type implies. PKIX-TA(0)
 * and PKIX-EE(1) need a CA store nobody agreed on for MX hosts, so they are unusable, as in Postfix.
 */
export function isUsable(r: Tlsa): boolean {
  if (r.usage !== 2 && r.usage !== 3) return false;
  if (r.selector !== 0 && r.selector !== 1) return false;
  if (r.matchingType === 0) return r.data.length > 0;
  return DIGEST_LENGTH[r.matchingType] === r.data.length;
}

/** `3 1 1 ab12…`, as in a zone file (data shortened: the audit log needs which record, not its bytes). */
export function describeTlsa(r: Tlsa): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex').slice(0, 16)}`;
}

/** `3 1 1 AB12…` in full, as a zone file writes it (TLS-RPT's `policy-string`). */
export function presentTlsa(r: Tlsa): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex').toUpperCase()}`;
}

/**
 * A digest of a whole TLSA RRset, independent of record order: part of the trust key, so a
 * session made under one set is never resumed under another (a rollover costs one full handshake).
 */
export function tlsaSetDigest(records: readonly Tlsa[]): string {
  const canonical = records.map((r) => `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`).sort();
  return createHash('sha256').update(canonical.join('\n')).digest('hex').slice(0, 24);
}
