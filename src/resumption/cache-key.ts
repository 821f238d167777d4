import { createHash } from 'node:crypto';
import { textDigest } from '../util/digest.js';

/**
 * Every input of the trust decision for one upstream connection. Node skips hostname and CA
 * checks on a resumed session, so a session may only be offered under the exact decision it
 * was made under: anything that could change the verdict belongs here.
 */
export interface TrustInputs {
  host: string;
  port: number;
  servername: string;
  /** PEM text (or digests) of the CA set; undefined means the system store. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** none: no verification; chain: CA only; name: CA and hostname (`checkServerIdentity`). */
  verify: 'none' | 'chain' | 'name';
  /** The name the certificate must match when verify is `name` (defaults to servername). */
  verifyName?: string;
  /** How `verifyName` is matched: exactly, or also any name under it (Postfix's dot-nexthop). */
  verifyMatch?: 'exact' | 'dot-nexthop';
  minVersion?: string;
  maxVersion?: string;
  ciphers?: string;
  /** Client certificate PEM, if one is presented. */
  clientCert?: string | Buffer;
  /** The SMTP server's EHLO name, when known before the handshake (see-through load balancers). */
  ehloName?: string;
  /**
   * Under a DANE level: the level, what applied to the host and the digest of its usable TLSA set.
   * A session is then resumed only under the same records, and never across DANE and non-DANE.
   */
  dane?: string;
  /**
   * Under a DANE level: the names DANE-TA checks the leaf against (the TLSA base domain, the
   * next-hop domain). A resumed session skips that check, so it is resumed only for the same names
   * (Postfix keys its sessions by the current next hop too): never for another domain sharing the host.
   */
  daneNames?: readonly string[];
  /** Under an MTA-STS policy: its mode and id. A session is resumed only under the policy it was made under. */
  sts?: string;
}

export interface CacheKey {
  /** Full digest, the store's key. */
  id: string;
  /** 12 hex characters for logs. */
  short: string;
  /** host:port, for people. */
  destination: string;
}

function digest(value: string | Buffer | Array<string | Buffer> | undefined): string {
  if (value === undefined) return 'system';
  if (typeof value === 'string') return textDigest(value);
  const h = createHash('sha256');
  for (const part of Array.isArray(value) ? value : [value]) {
    h.update(part);
    h.update('\0');
  }
  return h.digest('hex');
}

export function cacheKey(t: TrustInputs): CacheKey {
  const canonical = JSON.stringify([
    'ticketbooth/1',
    t.host.toLowerCase(),
    t.port,
    t.servername.toLowerCase(),
    digest(t.ca),
    t.verify,
    (t.verifyName ?? t.servername).toLowerCase(),
    t.minVersion ?? '',
    t.maxVersion ?? '',
    t.ciphers ?? '',
    t.clientCert === undefined ? '' : digest(t.clientCert),
    (t.ehloName ?? '').toLowerCase(),
    // Appended only when not exact, so keys made before this field existed stay valid.
    ...(t.verifyMatch === 'dot-nexthop' ? ['dot-nexthop'] : []),
    ...(t.dane !== undefined ? ['dane', t.dane, ...(t.daneNames ?? []).map((n) => n.toLowerCase())] : []),
    ...(t.sts !== undefined ? ['sts', t.sts] : []),
  ]);
  const id = createHash('sha256').update(canonical).digest('hex');
  return { id, short: id.slice(0, 12), destination: `${t.host}:${t.port}` };
}
