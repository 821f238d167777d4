import { getServers } from 'node:dns';
import { stsAuditOf } from '../upstream/sts-check.js';
import type { Agent } from 'node:https';
import type { AuditLog } from '../audit/audit-log.js';
import type { StsAudit } from '../audit/events.js';
import { readConfigFile } from '../config/files.js';
import type { DnsConfig, MtaStsConfig } from '../config/smtp-schema.js';
import { lookupThrough } from '../dns/lookup-through.js';
import { SecureResolver, txtStrings } from '../dns/secure-resolver.js';
import { fetchPolicy } from '../mta-sts/fetch.js';
import { appliedOf, MtaStsPolicies, type PolicyKv } from '../mta-sts/policies.js';
import { mxMatches } from '../mta-sts/policy.js';
import { BoundedMap } from '../util/bounded-map.js';
import type { HopIdentity } from './tls-policy.js';

/** Domains whose last-told policy is remembered (oldest forgotten: at worst its text is written again). */
const MAX_TOLD = 10_000;

/** What MTA-STS did to a domain's hosts: the ones left to try (marked), or none, and the transaction line's `sts`. */
export type StsOutcome = { candidates: HopIdentity[]; audit: StsAudit } | { refused: string; audit: StsAudit };

/**
 * MTA-STS for a listener's mx routes (RFC 8461): the policy of the recipient domain, from its TXT
 * record and policy host (through `dns.servers`, with the `mtaSts` section's CA and proxy), cached
 * in the ticket store (a fleet fetches once), applied to the domain's MX hosts.
 */
export class StsRouting {
  private readonly policies: MtaStsPolicies;

  constructor(
    dns: DnsConfig,
    config: MtaStsConfig,
    kv: PolicyKv,
    private readonly audit: AuditLog,
    private readonly listener: string,
  ) {
    const servers = dns.servers ?? getServers();
    const txtResolver = new SecureResolver({ servers, timeoutMs: dns.timeoutSeconds * 1000, tries: dns.tries });
    const ca = config.ca === undefined ? undefined : readConfigFile(config.ca, 'ca', 'mtaSts');
    const lookup = dns.servers ? lookupThrough(dns) : undefined;
    let agent: Promise<Agent> | undefined;
    // Loaded only when a proxy is configured.
    const proxyAgent = (url: string): Promise<Agent> =>
      (agent ??= import('https-proxy-agent').then(({ HttpsProxyAgent }) => new HttpsProxyAgent(url, ca ? { ca } : {}) as unknown as Agent));
    this.policies = new MtaStsPolicies({
      kv,
      txt: async (name) => {
        const r = await txtResolver.query(name, 'TXT');
        if (r.status === 'NXDOMAIN') return { records: [], ttl: r.ttl };
        if (r.status !== 'NOERROR') return undefined;
        return { records: txtStrings(r), ttl: r.ttl };
      },
      fetch: async (domain) =>
        fetchPolicy(domain, {
          timeoutMs: config.timeoutSeconds * 1000,
          ...(ca ? { ca } : {}),
          ...(lookup ? { lookup } : {}),
          ...(config.proxy ? { agent: await proxyAgent(config.proxy) } : {}),
        }),
    });
  }

  /** Per domain, the policy id and UTC day its text was last written to the audit log. */
  private readonly told = new BoundedMap<string, string>(MAX_TOLD);

  /**
   * Whether the policy's text goes to the audit log now: after each fetch, and the first time a
   * cached policy is used on a UTC day, so a day's log quotes every policy that day's sessions were
   * made under (TLS-RPT's `policy-string`), whichever instance fetched it and when.
   */
  private firstToday(domain: string, id: string, fetched: boolean): boolean {
    const mark = `${id} ${new Date().toISOString().slice(0, 10)}`;
    if (!fetched && this.told.get(domain) === mark) return false;
    this.told.set(domain, mark);
    return true;
  }

  /** What applied to `domain` at its last lookup, while fresh (for the connection cache's check). */
  applied(domain: string): string | undefined {
    return this.policies.applied(domain);
  }

  /** The domain's policy applied to its MX hosts: enforce keeps only those its `mx` patterns name (RFC 8461 4.1). */
  async apply(domain: string, hosts: HopIdentity[]): Promise<StsOutcome> {
    const found = await this.policies.policyFor(domain);
    const p = found.policy;
    if (p && this.firstToday(domain, p.id, found.fetched === true)) {
      this.audit.record({
        event: 'mta-sts.policy',
        listener: this.listener,
        domain,
        id: p.id,
        mode: p.mode,
        mx: p.mx,
        maxAge: p.maxAgeSeconds,
        text: p.text,
      });
    }
    const audit: StsAudit = {
      domain,
      ...(p && p.mode !== 'none' ? { mode: p.mode, id: p.id } : {}),
      ...(found.failure ? { fetchFailure: found.failure } : {}),
    };
    // No policy: the hosts are marked all the same, so their lines name the domain (TLS-RPT's no-policy-found).
    if (!p || p.mode === 'none') return { candidates: hosts.map((h) => ({ ...h, sts: { domain, mode: 'none' as const } })), audit };
    const mode = p.mode;
    const marked = hosts.map((h) => ({ ...h, sts: { domain, id: p.id, mode, mxMatch: mxMatches(p.mx, h.hostName) } }));
    if (mode === 'testing') return { candidates: marked, audit };
    const kept = marked.filter((h) => h.sts.mxMatch);
    if (kept.length > 0) return { candidates: kept, audit };
    const names = [...new Set(hosts.map((h) => h.hostName))].join(', ');
    return {
      refused: `MTA-STS: no MX host of ${domain} (${names}) matches its policy (mx: ${p.mx.join(', ')})`,
      audit: { ...audit, mx: 'mismatch', result: 'validation-failure' },
    };
  }
}

/** `appliedOf` for one host: what a connection made to it was made under. */
export function stsApplied(hop: HopIdentity): string {
  return hop.sts && hop.sts.mode !== 'none' ? `${hop.sts.mode}:${hop.sts.id}` : appliedOf(undefined);
}

/** The audit's `sts` for one host (its `result` filled in by whoever sees the outcome). */
export function stsAuditOfHop(hop: HopIdentity): StsAudit | undefined {
  return hop.sts ? stsAuditOf({ ...hop.sts, mxHost: hop.hostName }) : undefined;
}
