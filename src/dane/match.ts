import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { describeTlsa, type Tlsa } from './tlsa.js';

/** What the peer's chain proved against the TLSA records (RFC 7671, 7672 3.1). */
export type DaneMatch =
  | { ok: true; record: string; depth: number }
  | { ok: false; reason: 'tlsa-mismatch' | 'name-mismatch' | 'certificate-expired' | 'no-certificate'; tried: number };

/**
 * Matches the server's chain (leaf first, as sent) against usable TLSA records:
 * - DANE-EE(3): the leaf's certificate or key; no name, chain or date check (RFC 7672 3.1.1);
 * - DANE-TA(2): a certificate the server sent above the leaf (or the bare key the record holds)
 *   signs down to the leaf; every certificate from the leaf to the anchor within its dates; the
 *   leaf names one of `names` (the TLSA base domain and the next-hop domain, RFC 7672 3.2.2).
 * Every record is tried before a failure is declared; an EE match wins over a TA failure.
 */
export function matchChain(
  chain: readonly X509Certificate[],
  records: readonly Tlsa[],
  names: readonly string[],
  now = new Date(),
): DaneMatch {
  const leaf = chain[0];
  if (!leaf) return { ok: false, reason: 'no-certificate', tried: records.length };
  for (const r of records) if (r.usage === 3 && matches(r, leaf)) return { ok: true, record: describeTlsa(r), depth: 0 };

  let taReason: 'tlsa-mismatch' | 'name-mismatch' | 'certificate-expired' = 'tlsa-mismatch';
  for (const r of records) {
    if (r.usage !== 2) continue;
    const depth = anchorDepth(chain, r);
    if (depth === undefined) continue;
    if (!chain.slice(0, depth + 1).every((c) => withinDates(c, now))) {
      taReason = 'certificate-expired';
      continue;
    }
    if (!names.some((n) => leaf.checkHost(n, { partialWildcards: false }) !== undefined)) {
      taReason = 'name-mismatch';
      continue;
    }
    return { ok: true, record: describeTlsa(r), depth };
  }
  return { ok: false, reason: taReason, tried: records.length };
}

/**
 * Where a DANE-TA record anchors the chain: the depth of the sent certificate it matches, whose
 * signatures link down to the leaf; or, for a record holding a full key, one above the top of a
 * linked chain that key signed (an anchor the server need not send, RFC 7671 5.2.2).
 */
function anchorDepth(chain: readonly X509Certificate[], r: Tlsa): number | undefined {
  for (let depth = 1; depth < chain.length; depth++) {
    if (!signedBy(chain[depth - 1], chain[depth].publicKey)) return undefined; // the chain breaks here
    if (matches(r, chain[depth])) return depth;
  }
  if (r.selector !== 1 || r.matchingType !== 0) return undefined;
  const key = spkiKey(r.data);
  const top = chain.length - 1;
  return key && signedBy(chain[top], key) ? top : undefined;
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
