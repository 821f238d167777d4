import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { DaneDecision } from '../dane/decision.js';
import type { TrustCheck } from '../audit/events.js';
import type { CacheKey } from '../resumption/cache-key.js';
import { textDigest } from '../util/digest.js';
import { secureContextFor } from './secure-context.js';

/** Everything that decides how one upstream TLS connection is made and trusted. */
export interface TlsTarget {
  host: string;
  port: number;
  /** SNI; defaults to the host when it is a name. */
  servername?: string;
  /** PEM CA bundle; undefined means Node's default (system) CAs. */
  ca?: string;
  /** name: chain and host name checked; chain: chain only; none: nothing checked. */
  verify: 'name' | 'chain' | 'none';
  /** The name the certificate must carry under `name` (defaults to servername, then host). */
  verifyName?: string;
  /** exact (default): the certificate names `verifyName`; dot-nexthop: or any name under it. */
  verifyMatch?: 'exact' | 'dot-nexthop';
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  ciphers?: string;
  /** Key-exchange groups offered, colon-separated OpenSSL names (Node's `ecdhCurve`); Node's default when absent. */
  groups?: string;
  /** PEM client certificate and key. */
  cert?: string;
  key?: string;
  /** SMTP server's EHLO name, when read before STARTTLS. */
  ehloName?: string;
  /**
   * Under a DANE level, what DNSSEC decided for the host. When it says `dane`, the peer is
   * authenticated by the TLSA records alone (`names`: the reference identifiers for DANE-TA), so
   * `verify` stays `none`, no CA store takes part (secure-context.ts) and the dialer matches the
   * chain once the handshake is done. `mxHost`: the MX host, whose TLSA base domain may differ.
   */
  dane?: DaneDecision & { names: string[]; mxHost: string };
  /**
   * Under an MTA-STS policy: enforce makes the level `verify` (WebPKI, the MX host name); testing
   * leaves it, and the dialer records whether `verify` would have passed. Part of the trust key.
   * Mode `none`: the route applies MTA-STS, the domain has no policy; only the audit line tells it.
   */
  sts?: TargetSts;
}

export type TargetSts =
  | { domain: string; id: string; mode: 'enforce' | 'testing'; mxMatch: boolean; mxHost: string }
  | { domain: string; mode: 'none'; mxHost: string };

export function servernameOf(t: Pick<TlsTarget, 'host' | 'servername'>): string {
  return t.servername ?? t.host;
}

/** A field the trust key holds: its canonical parts, in key order (`[]`: left out of the key). */
interface InKey {
  trust: 'key';
  parts(t: TlsTarget): Array<string | number>;
}

/** A field that cannot change the verdict on the server, and why; `connection`: it still reaches the connection. */
interface NotTrust {
  trust: 'not-trust';
  why: string;
  connection: boolean;
}

/**
 * Every `TlsTarget` field, classified: part of the trust key, or not part of the trust decision.
 * Node skips name and CA checks on a resumed session, so a session may only be offered under the
 * exact decision it was made under: anything that could change the verdict is `key`. A new field
 * does not compile until it is classified here; `connectOptions` and the secure context read only
 * what this table lets reach a connection (`ConnectionInputs`), and the key test iterates it.
 *
 * The key is the digest of these parts in this order, so keys in a shared store stay valid across
 * versions: a field added later contributes `[]` while unset (as verifyMatch, dane and sts do).
 */
export const TRUST_FIELDS = {
  host: { trust: 'key', parts: (t) => [t.host.toLowerCase()] },
  port: { trust: 'key', parts: (t) => [t.port] },
  servername: { trust: 'key', parts: (t) => [servernameOf(t).toLowerCase()] },
  ca: { trust: 'key', parts: (t) => [t.ca === undefined ? 'system' : textDigest(t.ca)] },
  verify: { trust: 'key', parts: (t) => [t.verify] },
  verifyName: { trust: 'key', parts: (t) => [(t.verifyName ?? servernameOf(t)).toLowerCase()] },
  minVersion: { trust: 'key', parts: (t) => [t.minVersion ?? ''] },
  maxVersion: { trust: 'key', parts: (t) => [t.maxVersion ?? ''] },
  ciphers: { trust: 'key', parts: (t) => [t.ciphers ?? ''] },
  cert: { trust: 'key', parts: (t) => [t.cert === undefined ? '' : textDigest(t.cert)] },
  // Groups pick the key exchange. A TLS 1.2 session resumes with none, keeping the exchange it was
  // made with: a reload that drops a group (a weak curve) would not hold until those sessions
  // expired. So, like ciphers, they split the key; unset adds nothing (keys made before stay valid).
  groups: { trust: 'key', parts: (t) => (t.groups === undefined ? [] : ['groups', t.groups]) },
  key: {
    trust: 'not-trust',
    why: 'the private key of `cert`, which is in the key: no other key fits that certificate (Node refuses the context)',
    connection: true,
  },
  // A see-through load balancer: which server behind the address is asked (its EHLO name).
  ehloName: { trust: 'key', parts: (t) => [(t.ehloName ?? '').toLowerCase()] },
  verifyMatch: { trust: 'key', parts: (t) => (t.verifyMatch === 'dot-nexthop' ? ['dot-nexthop'] : []) },
  // The level, what applied to the host and its usable TLSA set: never across DANE and non-DANE or
  // a rollover; and DANE-TA's reference names, so never for another next hop sharing the host.
  dane: {
    trust: 'key',
    parts: (t) =>
      t.dane ? ['dane', `${t.dane.level}:${t.dane.effective}:${t.dane.digest ?? ''}`, ...t.dane.names.map((n) => n.toLowerCase())] : [],
  },
  // The policy's mode and id; mode `none` (no policy) checks nothing beyond the level.
  sts: { trust: 'key', parts: (t) => (t.sts && t.sts.mode !== 'none' ? ['sts', `${t.sts.mode}:${t.sts.id}`] : []) },
} satisfies { [K in keyof TlsTarget]-?: InKey | NotTrust };

type Fields = typeof TRUST_FIELDS;
/** The fields in the trust key. */
export type TrustField = { [K in keyof Fields]: Fields[K] extends InKey ? K : never }[keyof Fields];
/** The fields outside the trust decision that still reach the connection. */
type ConnectionOnlyField = { [K in keyof Fields]: Fields[K] extends { connection: true } ? K : never }[keyof Fields];
/** Every input of the trust decision for one upstream connection. */
export type TrustInputs = Pick<TlsTarget, TrustField>;
/** What a connection (options, secure context) may be built from: nothing the key does not hold but the private key. */
export type ConnectionInputs = Pick<TlsTarget, TrustField | ConnectionOnlyField>;

/** The key's fields in key order. */
const IN_KEY = Object.values<InKey | NotTrust>(TRUST_FIELDS).filter((f): f is InKey => f.trust === 'key');

/** The trust key: a session is only ever offered under the trust decision it was made under. */
export function keyOf(t: TrustInputs): CacheKey {
  const parts: Array<string | number> = ['ticketbooth/1'];
  for (const f of IN_KEY) parts.push(...f.parts(t));
  const canonical = JSON.stringify(parts);
  const id = createHash('sha256').update(canonical).digest('hex');
  return { id, short: id.slice(0, 12), destination: `${t.host}:${t.port}` };
}

/**
 * How a full handshake with the target checks the certificate, and against which names (`.name`:
 * any name under it): the audit line's `trust`. Every part is in the trust key, so a resumed
 * session, which Node and DANE do not check again, was checked exactly so when it was made.
 */
export function trustOf(t: TlsTarget): TrustCheck {
  if (t.dane?.effective === 'dane') return { check: 'tlsa', names: t.dane.names };
  if (t.verify !== 'name') return { check: t.verify, names: [] };
  const name = t.verifyName ?? servernameOf(t);
  return { check: 'name', names: t.verifyMatch === 'dot-nexthop' ? [name, `.${name}`] : [name] };
}

/** What every connection to one target shares: its trust key and its `tls.connect` options. */
export interface PreparedTarget {
  readonly key: CacheKey;
  /** Throws, on every call, what building them throws (a cipher string nothing matches): each dial is refused alike. */
  options(): Readonly<ConnectionOptions>;
}

const prepared = new WeakMap<TlsTarget, PreparedTarget>();

/**
 * The key and options of a target, made on its first dial and kept with it: a listener dials the
 * same target object on every connection, and both cost a SHA-256, a context lookup and a parse of
 * the name per connection otherwise. Targets are values, never changed once made (a reload or a
 * route's next hop makes new ones), so what was computed from one stays true of it.
 */
export function prepare(t: TlsTarget): PreparedTarget {
  let p = prepared.get(t);
  if (p === undefined) {
    let options: ConnectionOptions | undefined;
    p = { key: keyOf(t), options: () => (options ??= connectOptions(t)) };
    prepared.set(t, p);
  }
  return p;
}

/** The `tls.connect` options for a target, without socket and session. */
export function connectOptions(t: ConnectionInputs): ConnectionOptions {
  const servername = servernameOf(t);
  const verifyName = t.verifyName ?? servername;
  // CA set, client certificate, ciphers, groups and version bounds live in the shared context.
  const opts: ConnectionOptions = {
    host: t.host,
    port: t.port,
    rejectUnauthorized: t.verify !== 'none',
    secureContext: secureContextFor(t),
  };
  if (isIP(servername) === 0) opts.servername = servername; // SNI carries names only (RFC 6066 3)
  opts.checkServerIdentity =
    t.verify !== 'name'
      ? () => undefined
      : t.verifyMatch === 'dot-nexthop'
        ? (_host, cert) => {
            const err = checkServerIdentity(verifyName, cert);
            return err && namesUnder(cert, verifyName) ? undefined : err;
          }
        : (_host, cert) => checkServerIdentity(verifyName, cert);
  return opts;
}

/** Whether a DNS name in the certificate lies under `domain` (`mx1.example.org`, `*.example.org` for `example.org`). */
function namesUnder(cert: PeerCertificate, domain: string): boolean {
  const suffix = '.' + domain.toLowerCase().replace(/\.$/, '');
  const names = (cert.subjectaltname ?? '')
    .split(', ')
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4).toLowerCase().replace(/\.$/, ''));
  return names.some((n) => n.endsWith(suffix) && n.length > suffix.length);
}
