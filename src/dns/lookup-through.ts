import { Resolver } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import type { DnsConfig } from '../config/smtp-schema.js';

/**
 * A `lookup` for Node's net, tls and https that resolves through the configured `dns.servers`, as
 * every other name of a route is: the MTA-STS policy host, a TLS-RPT `https:` rua's host.
 */
export function lookupThrough(dns: DnsConfig): LookupFunction {
  const resolver = new Resolver({ timeout: dns.timeoutSeconds * 1000, tries: dns.tries });
  resolver.setServers(dns.servers!);
  return (hostname, options, callback) => {
    const all = typeof options === 'object' && options.all === true;
    Promise.all([resolver.resolve4(hostname).catch(() => []), resolver.resolve6(hostname).catch(() => [])]).then(
      ([v4, v6]) => {
        const found = [...v4.map((a) => ({ address: a, family: 4 })), ...v6.map((a) => ({ address: a, family: 6 }))];
        if (found.length === 0)
          return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND', hostname }), '', 4);
        if (all) (callback as (e: null, a: typeof found) => void)(null, found);
        else callback(null, found[0].address, found[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 4),
    );
  };
}
