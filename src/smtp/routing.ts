import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { readConfigFile } from '../config/files.js';
import type { DnsConfig, SmtpListenerConfig, SmtpRouteConfig } from '../config/smtp-schema.js';
import { TlsaLookup, type DaneLevel } from '../dane/decision.js';
import { daneForHost } from '../dane/host-tlsa.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { StsAudit } from '../audit/events.js';
import type { MtaStsConfig } from '../config/smtp-schema.js';
import { SecureResolver } from '../dns/secure-resolver.js';
import type { PolicyKv } from '../mta-sts/policies.js';
import { StsRouting } from './sts-routing.js';
import { Credentials, loadCredentials } from './credentials.js';
import { nodeLookups, secureLookups, type HostLookups } from './host-lookups.js';
import { isDane, policyFor, type HopIdentity, type TlsPolicy } from './tls-policy.js';
import type { LocalReply } from './replies.js';

/** A configured way out: the listener's route or a transport-table entry, with files read. */
export interface Route {
  /** `route` or `transport[example.org]`, for logs and errors. */
  name: string;
  mode: 'mx' | 'relay';
  host?: string;
  port: number;
  tls: TlsPolicy;
  auth?: Credentials;
}

/** One upstream host to try, in order, with what DNS said of it. */
export interface Candidate extends HopIdentity {
  /** The MX RRset was DNSSEC-validated; undefined without one (mode relay, an address literal). */
  mxSecure?: boolean;
  addressSecure?: boolean;
  /** Where the addresses were found: the end of the host's CNAME chain (RFC 7672 2.2.3). */
  addressName?: string;
}

/** `sts`: under MTA-STS, what the domain's policy was (the transaction line's `sts` when no host is reached). */
export type Resolution = ({ ok: true; candidates: Candidate[] } | { ok: false; reply: LocalReply }) & { sts?: StsAudit };

/** What a Router needs besides its listener's config, for MTA-STS (policies cached in the ticket store, fetches audited). */
export interface RouterDeps {
  dns: DnsConfig;
  mtaSts: MtaStsConfig;
  kv: PolicyKv;
  audit: AuditLog;
}

/** The SMTP listener's routing: which route a domain takes, and the hosts that route leads to. */
export class Router {
  private readonly fallback: Route;
  private readonly exact = new Map<string, Route>();
  private readonly parents: Array<[string, Route]> = [];
  private readonly lookups: HostLookups;
  /** For DANE routes: lookups through the validating resolvers of `dns.servers`, and the TLSA cache. */
  private readonly dane?: { lookups: HostLookups; tlsa: TlsaLookup };
  /** For routes with `tls.mtaSts`: the recipient domains' policies. */
  readonly sts?: StsRouting;

  constructor(l: SmtpListenerConfig, deps: RouterDeps) {
    const dns = deps.dns;
    const ca = (file: string): string => readConfigFile(file, 'ca');
    const build = (name: string, r: SmtpRouteConfig): Route => ({
      name,
      mode: r.mode,
      ...(r.mode === 'relay' ? { host: r.host } : {}),
      port: r.port,
      tls: policyFor(r.mode, l.tls, r.tls, ca),
      ...(r.auth ? { auth: loadCredentials(r.auth, `listener ${l.name} ${name}.auth`) } : {}),
    });
    this.fallback = build('route', l.route);
    for (const [domain, r] of Object.entries(l.transport)) {
      const route = build(`transport[${domain}]`, r);
      if (domain.startsWith('.')) this.parents.push([domain.toLowerCase(), route]);
      else this.exact.set(domain.toLowerCase(), route);
    }
    // Longest suffix first, so `.a.example` wins over `.example`.
    this.parents.sort((a, b) => b[0].length - a[0].length);
    // Only created here; nothing is asked until a transaction needs it (start works offline).
    const timeoutMs = Math.round((dns?.timeoutSeconds ?? 5) * 1000);
    const resolver = new Resolver({ timeout: timeoutMs, tries: dns?.tries ?? 2 });
    if (dns?.servers) resolver.setServers(dns.servers);
    this.lookups = nodeLookups(resolver);
    const routes = [this.fallback, ...this.exact.values(), ...this.parents.map(([, r]) => r)];
    const daneRoute = routes.find((r) => isDane(r.tls.level));
    if (daneRoute) {
      // The AD bit is trusted only from resolvers named here: never from whatever resolv.conf says.
      if (!dns?.servers)
        throw new Error(
          `listener ${l.name} ${daneRoute.name}: tls.level ${daneRoute.tls.level} needs dns.servers (local validating resolvers, e.g. unbound on 127.0.0.1)`,
        );
      const secure = new SecureResolver({ servers: dns.servers, timeoutMs, tries: dns.tries });
      this.dane = { lookups: secureLookups(secure), tlsa: new TlsaLookup(secure) };
    }
    if (routes.some((r) => r.tls.mtaSts)) this.sts = new StsRouting(dns, deps.mtaSts, deps.kv, deps.audit, l.name);
  }

  routeFor(domain: string): Route {
    const d = domain.toLowerCase();
    const hit = this.exact.get(d) ?? this.parents.find(([suffix]) => d.endsWith(suffix))?.[1];
    return hit ?? this.fallback;
  }

  /**
   * The transaction key: recipients share a transaction when this is equal. Mode mx keys by
   * domain (its MX set is looked up per domain); mode relay by the route.
   */
  hopKey(route: Route, domain: string): string {
    return route.mode === 'mx' ? `${route.name}|mx|${domain.toLowerCase()}` : `${route.name}|relay`;
  }

  /**
   * Hosts to try, in order: the relay host, or the domain's MX hosts by preference (RFC 5321 5.1).
   * Under a DANE level each host carries its decision (dane/decision.ts), from lookups that went
   * through the validating resolver.
   */
  async resolve(route: Route, domain: string): Promise<Resolution> {
    const dane = this.dane && isDane(route.tls.level) ? this.dane : undefined;
    const found = await this.hosts(route, domain, dane?.lookups ?? this.lookups);
    if (!found.ok) return found;
    let candidates = found.candidates;
    if (dane) {
      // In turn, not at once: a host's addresses share one TLSA lookup (the cache's), and one rollover note.
      candidates = [];
      for (const c of found.candidates) candidates.push(await withDane(c, route, dane.tlsa));
    }
    if (!this.sts || !route.tls.mtaSts || route.mode !== 'mx' || isIP(candidates[0]?.nextHop ?? '') !== 0) return { ok: true, candidates };
    const sts = await this.sts.apply(domain.toLowerCase(), candidates);
    if ('refused' in sts) return { ...fail(451, '4.7.5', sts.refused), sts: sts.audit };
    return { ok: true, candidates: sts.candidates, sts: sts.audit };
  }

  private async hosts(route: Route, domain: string, lookups: HostLookups): Promise<Resolution> {
    if (route.mode === 'relay') {
      const host = route.host!;
      if (isIP(host) !== 0 || lookups === this.lookups)
        return { ok: true, candidates: [{ connect: host, port: route.port, hostName: host, nextHop: host }] };
      // DANE for a relay host: its own addresses must be secure, as an MX host's (there is no MX RRset).
      const found = await lookups.addresses(host);
      if (found === 'temporary') return fail(451, '4.4.3', `DNS lookup of ${host} failed`);
      if (found.ips.length === 0) return fail(451, '4.4.4', `no address for ${host}`);
      return {
        ok: true,
        candidates: found.ips.map((ip) => ({
          connect: ip,
          port: route.port,
          hostName: host,
          nextHop: host,
          addressSecure: found.secure,
          addressName: found.name,
        })),
      };
    }
    // Case-insensitive: the envelope parser lower-cases domains, so the tag arrives as `ipv6:`.
    const literal = /^\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]$/i.exec(domain);
    if (literal) {
      const ip = literal[1];
      if (isIP(ip) === 0) return fail(550, '5.1.2', `bad address literal ${domain}`);
      return { ok: true, candidates: [{ connect: ip, port: route.port, hostName: ip, nextHop: ip }] };
    }

    const mx = await lookups.mx(domain);
    if ('error' in mx) {
      if (mx.error === 'nxdomain') return fail(550, '5.1.2', `domain ${domain} does not exist`);
      return fail(451, '4.4.3', `DNS lookup of MX ${domain} failed (${mx.why})`);
    }
    // RFC 7505: a single MX of "." says the domain takes no mail.
    if (mx.exchanges.some((e) => e.exchange === '' || e.exchange === '.')) {
      return fail(556, '5.1.10', `recipient domain ${domain} has a null MX`);
    }
    const ordered = shuffleTies(mx.exchanges).map((e) => e.exchange.replace(/\.$/, ''));
    // No MX: the domain's own address records are its implicit MX (RFC 5321 5.1).
    const names = ordered.length > 0 ? ordered : [domain];

    const candidates: Candidate[] = [];
    let temporary = false;
    for (const name of names) {
      const found = await lookups.addresses(name);
      if (found === 'temporary') temporary = true;
      else
        for (const ip of found.ips)
          candidates.push({
            connect: ip,
            port: route.port,
            hostName: name,
            nextHop: domain,
            // An implicit MX (the domain's own addresses) has no MX RRset to be insecure.
            ...(ordered.length > 0 ? { mxSecure: mx.secure } : {}),
            addressSecure: found.secure,
            addressName: found.name,
          });
    }
    if (candidates.length > 0) return { ok: true, candidates };
    if (temporary) return fail(451, '4.4.3', `DNS lookup of ${names.join(', ')} failed`);
    if (ordered.length === 0) return fail(550, '5.1.2', `domain ${domain} has no MX and no address`);
    // MX hosts that do not resolve: someone's mistake that is often fixed soon; keep the mail.
    return fail(451, '4.4.4', `no address for the MX hosts of ${domain}`);
  }
}

/** The host's DANE decision: where its TLSA is and what it says (dane/host-tlsa.ts). */
async function withDane(c: Candidate, route: Route, tlsa: TlsaLookup): Promise<Candidate> {
  const host = { ...c, addressSecure: c.addressSecure === true, addressName: c.addressName ?? c.hostName };
  return { ...c, dane: await daneForHost(host, route.tls.level as DaneLevel, route.tls.daneInsecureMx, tlsa) };
}

function fail(code: number, enhanced: string, text: string): Resolution {
  return { ok: false, reply: { code, enhanced, text } };
}

/** Sorted by preference; equal preferences in random order (RFC 5321 5.1 load spreading). */
function shuffleTies<T extends { priority: number }>(list: T[]): T[] {
  return list
    .map((e) => ({ e, r: Math.random() }))
    .sort((a, b) => a.e.priority - b.e.priority || a.r - b.r)
    .map((x) => x.e);
}
