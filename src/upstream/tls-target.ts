import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { DaneDecision } from '../dane/decision.js';
import type { TrustCheck } from '../audit/events.js';
import { cacheKey, type CacheKey } from '../resumption/cache-key.js';
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

export function servernameOf(t: TlsTarget): string {
  return t.servername ?? t.host;
}

export function keyOf(t: TlsTarget): CacheKey {
  return cacheKey({
    host: t.host,
    port: t.port,
    servername: servernameOf(t),
    ca: t.ca,
    verify: t.verify,
    verifyName: t.verifyName,
    verifyMatch: t.verifyMatch,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    ciphers: t.ciphers,
    clientCert: t.cert,
    ehloName: t.ehloName,
    ...(t.dane ? { dane: `${t.dane.level}:${t.dane.effective}:${t.dane.digest ?? ''}`, daneNames: t.dane.names } : {}),
    ...(t.sts && t.sts.mode !== 'none' ? { sts: `${t.sts.mode}:${t.sts.id}` } : {}),
  });
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

/** The `tls.connect` options for a target, without socket and session. */
export function connectOptions(t: TlsTarget): ConnectionOptions {
  const servername = servernameOf(t);
  const verifyName = t.verifyName ?? servername;
  // CA set, client certificate, ciphers and version bounds live in the shared context.
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
