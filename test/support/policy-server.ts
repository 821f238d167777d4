import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CertPair } from './certs.js';

/**
 * An MTA-STS policy host (RFC 8461 3.3): HTTPS on port 443 of one loopback address, for every
 * `mta-sts.<domain>` whose A record points there (told apart by the Host header). A test sets the
 * policy text per domain, counts the fetches, and can make a domain's host answer 503 (down).
 */
export interface PolicyServer {
  address: string;
  /** The policy text served for `domain`, or undefined for 404. */
  policies: Map<string, string>;
  /** Domains whose policy host answers 503. */
  down: Set<string>;
  /** Fetches per domain. */
  fetches: Map<string, number>;
  stop(): Promise<void>;
}

export async function startPolicyServer(address: string, cert: CertPair): Promise<PolicyServer> {
  const policies = new Map<string, string>();
  const down = new Set<string>();
  const fetches = new Map<string, number>();
  const server: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const domain = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^mta-sts\./, '');
    fetches.set(domain, (fetches.get(domain) ?? 0) + 1);
    const text = policies.get(domain);
    if (down.has(domain)) res.writeHead(503).end('down\n');
    else if (req.url !== '/.well-known/mta-sts.txt' || text === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(443, address, () => resolve());
  });
  return {
    address: (server.address() as AddressInfo).address,
    policies,
    down,
    fetches,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
