import type { Resolver } from 'node:dns/promises';
import type { SecureResolver } from '../dns/secure-resolver.js';

/** An MX answer: the exchanges (none: NODATA), and whether a validating resolver vouched for it. */
export type MxAnswer =
  { exchanges: Array<{ exchange: string; priority: number }>; secure: boolean } | { error: 'nxdomain' | 'temporary'; why: string };

/**
 * A host's addresses (A and AAAA); `secure` only when every answer that held one was validated
 * (its CNAME chain included); `name`: where they were found, the end of that chain (RFC 7672 2.2.3's
 * expanded name), else the name asked.
 */
export type AddressAnswer = { ips: string[]; secure: boolean; name: string } | 'temporary';

/** The lookups routing needs, through Node's resolver (c-ares) or the DNSSEC-aware one (DANE routes). */
export interface HostLookups {
  mx(domain: string): Promise<MxAnswer>;
  addresses(name: string): Promise<AddressAnswer>;
}

/** Node's resolver: nothing it answers counts as secure. */
export function nodeLookups(resolver: Resolver): HostLookups {
  return {
    async mx(domain) {
      try {
        return { exchanges: await resolver.resolveMx(domain), secure: false };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENODATA') return { exchanges: [], secure: false };
        return code === 'ENOTFOUND' ? { error: 'nxdomain', why: code } : { error: 'temporary', why: code ?? 'error' };
      }
    },
    async addresses(name) {
      const ips: string[] = [];
      let temporary = false;
      for (const lookup of [() => resolver.resolve4(name), () => resolver.resolve6(name)]) {
        try {
          ips.push(...(await lookup()));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENODATA' && code !== 'ENOTFOUND') temporary = true;
        }
      }
      return ips.length === 0 && temporary ? 'temporary' : { ips, secure: false, name };
    },
  };
}

/** The validating resolver of `dns.servers`: the AD bit says what is secure (RFC 7672 2.1). */
export function secureLookups(resolver: SecureResolver): HostLookups {
  return {
    async mx(domain) {
      const r = await resolver.query(domain, 'MX');
      if (r.status === 'NXDOMAIN') return { error: 'nxdomain', why: 'NXDOMAIN' };
      if (r.status !== 'NOERROR') return { error: 'temporary', why: r.status };
      const exchanges = r.records.map((a) => a.data as { exchange: string; preference: number });
      return { exchanges: exchanges.map((m) => ({ exchange: m.exchange, priority: m.preference })), secure: r.secure };
    },
    async addresses(name) {
      const ips: string[] = [];
      let temporary = false;
      let secure = true;
      let expanded: string | undefined;
      for (const type of ['A', 'AAAA'] as const) {
        const r = await resolver.query(name, type);
        if (r.status !== 'NOERROR' && r.status !== 'NXDOMAIN') temporary = true;
        else if (r.records.length > 0) {
          for (const a of r.records) if (a.type === 'A' || a.type === 'AAAA') ips.push(a.data);
          secure &&= r.secure;
          expanded ??= r.name;
        }
      }
      if (ips.length === 0 && temporary) return 'temporary';
      return { ips, secure: secure && ips.length > 0, name: expanded ?? name.toLowerCase().replace(/\.$/, '') };
    },
  };
}
