import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { readConfigFile } from '../config/files.js';
import type { DnsConfig, SmtpListenerConfig, SmtpRouteConfig } from '../config/smtp-schema.js';
import { Credentials, loadCredentials } from './credentials.js';
import { policyFor, type HopIdentity, type TlsPolicy } from './tls-policy.js';
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

/** One upstream host to try, in order. */
export type Candidate = HopIdentity;

export type Resolution = { ok: true; candidates: Candidate[] } | { ok: false; reply: LocalReply };

/** The SMTP listener's routing: which route a domain takes, and the hosts that route leads to. */
export class Router {
  private readonly fallback: Route;
  private readonly exact = new Map<string, Route>();
  private readonly parents: Array<[string, Route]> = [];
  private readonly resolver: Resolver;

  constructor(l: SmtpListenerConfig, dns: DnsConfig | undefined) {
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
    this.resolver = new Resolver({ timeout: Math.round((dns?.timeoutSeconds ?? 5) * 1000), tries: dns?.tries ?? 2 });
    if (dns?.servers) this.resolver.setServers(dns.servers);
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

  /** Hosts to try, in order: the relay host, or the domain's MX hosts by preference (RFC 5321 5.1). */
  async resolve(route: Route, domain: string): Promise<Resolution> {
    if (route.mode === 'relay') {
      const host = route.host!;
      return { ok: true, candidates: [{ connect: host, port: route.port, hostName: host, nextHop: host }] };
    }
    // Case-insensitive: the envelope parser lower-cases domains, so the tag arrives as `ipv6:`.
    const literal = /^\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]$/i.exec(domain);
    if (literal) {
      const ip = literal[1];
      if (isIP(ip) === 0) return fail(550, '5.1.2', `bad address literal ${domain}`);
      return { ok: true, candidates: [{ connect: ip, port: route.port, hostName: ip, nextHop: ip }] };
    }

    let exchanges: Array<{ exchange: string; priority: number }>;
    try {
      exchanges = await this.resolver.resolveMx(domain);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND') return fail(550, '5.1.2', `domain ${domain} does not exist`);
      if (code !== 'ENODATA') return fail(451, '4.4.3', `DNS lookup of MX ${domain} failed (${code ?? 'error'})`);
      exchanges = [];
    }
    // RFC 7505: a single MX of "." says the domain takes no mail.
    if (exchanges.some((e) => e.exchange === '' || e.exchange === '.')) {
      return fail(556, '5.1.10', `recipient domain ${domain} has a null MX`);
    }
    const ordered = shuffleTies(exchanges).map((e) => e.exchange.replace(/\.$/, ''));
    // No MX: the domain's own address records are its implicit MX (RFC 5321 5.1).
    const names = ordered.length > 0 ? ordered : [domain];

    const candidates: Candidate[] = [];
    let temporary = false;
    for (const name of names) {
      const found = await this.addresses(name);
      if (found === 'temporary') temporary = true;
      else for (const ip of found) candidates.push({ connect: ip, port: route.port, hostName: name, nextHop: domain });
    }
    if (candidates.length > 0) return { ok: true, candidates };
    if (temporary) return fail(451, '4.4.3', `DNS lookup of ${names.join(', ')} failed`);
    if (ordered.length === 0) return fail(550, '5.1.2', `domain ${domain} has no MX and no address`);
    // MX hosts that do not resolve: someone's mistake that is often fixed soon; keep the mail.
    return fail(451, '4.4.4', `no address for the MX hosts of ${domain}`);
  }

  private async addresses(name: string): Promise<string[] | 'temporary'> {
    const found: string[] = [];
    let temporary = false;
    for (const lookup of [() => this.resolver.resolve4(name), () => this.resolver.resolve6(name)]) {
      try {
        found.push(...(await lookup()));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENODATA' && code !== 'ENOTFOUND') temporary = true;
      }
    }
    return found.length === 0 && temporary ? 'temporary' : found;
  }
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
