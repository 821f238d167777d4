import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { describeTlsa, type Tlsa } from './tlsa.js';

/** Why a chain failed its TLSA records: the reason (the audit's word) and what happened, in words. */
export type DaneMismatch = {
  ok: false;
  reason: 'tlsa-mismatch' | 'anchor-not-sent' | 'name-mismatch' | 'certificate-expired' | 'no-certificate';
  tried: number;
  detail: string;
};

/** What the peer's chain proved against the TLSA records (RFC 7671, 7672 3.1). */
export type DaneMatch = { ok: true; record: string; depth: number } | DaneMismatch;

/**
 * Matches the server's chain (leaf first, as sent) against usable TLSA records:
 * - DANE-EE(3): the leaf's certificate or key; no name, chain or date check (RFC 7672 3.1.1);
 * - DANE-TA(2): a certificate the server sent above the leaf, or the full certificate or key the
 *   record holds (`2 0 0`, `2 1 0`: an anchor the server need not send, RFC 7671 5.2.2), signs
 *   down to the leaf; every certificate from the leaf to the anchor within its dates; the leaf
 *   names one of `names` (the TLSA base domain and the next-hop domain, RFC 7672 3.2.2).
 * Every record is tried before a failure is declared; an EE match wins over a TA failure.
 */
export function matchChain(
  chain: readonly X509Certificate[],
  records: readonly Tlsa[],
  names: readonly string[],
  now = new Date(),
): DaneMatch {
  const leaf = chain[0];
  const tried = records.length;
  if (!leaf) return { ok: false, reason: 'no-certificate', tried, detail: 'the server sent no certificate' };
  for (const r of records) if (r.usage === 3 && matches(r, leaf)) return { ok: true, record: describeTlsa(r), depth: 0 };

  let failure: DaneMismatch | undefined;
  for (const r of records) {
    if (r.usage !== 2) continue;
    const anchor = anchorOf(chain, r);
    if (anchor === undefined) continue;
    const certs = anchor.dnsCert ? [...chain.slice(0, anchor.depth), anchor.dnsCert] : chain.slice(0, anchor.depth + 1);
    const stale = certs.find((c) => !withinDates(c, now));
    if (stale) {
      failure = {
        ok: false,
        reason: 'certificate-expired',
        tried,
        detail: `${subjectOf(stale)} is outside its dates (${stale.validFrom} to ${stale.validTo}), under ${describeTlsa(r)}`,
      };
      continue;
    }
    if (!names.some((n) => leaf.checkHost(n, { partialWildcards: false }) !== undefined)) {
      failure = {
        ok: false,
        reason: 'name-mismatch',
        tried,
        detail: `the certificate names neither ${names.join(' nor ')}, under ${describeTlsa(r)}`,
      };
      continue;
    }
    return { ok: true, record: describeTlsa(r), depth: anchor.depth };
  }
  return failure ?? unmatched(chain, records);
}

/**
 * No record matched anything: when DANE-TA records are among them and the chain sent stops below
 * an issuer the server did not send, that missing anchor is what happened (a digest cannot stand in
 * for it); otherwise the records name other certificates or keys.
 */
function unmatched(chain: readonly X509Certificate[], records: readonly Tlsa[]): DaneMismatch {
  const tried = records.length;
  // A few records say which; a 451 line has no room for twenty.
  const shown = records.slice(0, 3).map(describeTlsa).join(', ');
  const list = records.length > 3 ? `the ${records.length} TLSA records (${shown}, ...)` : shown;
  const top = chain[linkedLength(chain) - 1];
  if (records.some((r) => r.usage === 2) && !top.checkIssued(top)) {
    return {
      ok: false,
      reason: 'anchor-not-sent',
      tried,
      detail: `the chain sent stops at ${subjectOf(top)}, issued by "${top.issuer.replace(/\n/g, ', ')}", which the server did not send; none of ${list} names a certificate it sent`,
    };
  }
  return { ok: false, reason: 'tlsa-mismatch', tried, detail: `the chain sent (${chain.length} certificate(s)) matched none of ${list}` };
}

/** How many certificates from the leaf up each sign the one below. */
function linkedLength(chain: readonly X509Certificate[]): number {
  let n = 1;
  while (n < chain.length && signedBy(chain[n - 1], chain[n].publicKey)) n++;
  return n;
}

/**
 * Where a DANE-TA record anchors the chain: the depth of the sent certificate it matches, whose
 * signatures link down to the leaf; or, for a record holding a full certificate or key, one above
 * the top of a linked chain that key signed (`dnsCert`: the record's certificate, whose dates count).
 */
function anchorOf(chain: readonly X509Certificate[], r: Tlsa): { depth: number; dnsCert?: X509Certificate } | undefined {
  const linked = linkedLength(chain);
  for (let depth = 1; depth < linked; depth++) if (matches(r, chain[depth])) return { depth };
  if (r.matchingType !== 0) return undefined;
  const dnsCert = r.selector === 0 ? certificate(r.data) : undefined;
  const key = dnsCert?.publicKey ?? (r.selector === 1 ? spkiKey(r.data) : undefined);
  if (!key || !signedBy(chain[linked - 1], key)) return undefined;
  return { depth: linked, ...(dnsCert ? { dnsCert } : {}) };
}

function certificate(der: Buffer): X509Certificate | undefined {
  try {
    return new X509Certificate(der);
  } catch {
    return undefined;
  }
}

function subjectOf(c: X509Certificate): string {
  return `"${c.subject.replace(/\n/g, ', ')}"`;
}

function signedBy(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.verify(key);
  } catch {
    return false;
  }
}

function spkiKey(der: Buffer): KeyObject | undefined {
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

function withinDates(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now <= new Date(c.validTo);
}

function matches(r: Tlsa, cert: X509Certificate): boolean {
  const item = r.selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  const value =
    r.matchingType === 0
      ? item
      : createHash(r.matchingType === 1 ? 'sha256' : 'sha512')
          .update(item)
          .digest();
  return value.equals(r.data);
}
