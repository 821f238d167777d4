/**
 * The SMTP benchmarks' next hop: a Debian Postfix 3.7 on its own loopback address, port 25,
 * STARTTLS with TLS 1.3 only, `discard` delivery for dest.test, logging each TLS session and
 * whether it was resumed (`summary, cache`). Its certificate names mx.dest.test and the address.
 */
import type { CertPair } from '../test/support/certs.js';
import { makeCert } from '../test/support/certs.js';
import { freeLoopbackAddress } from '../test/support/ports.js';
import { startPostfix, tls13Destination, type Postfix } from '../test/support/postfix.js';

export interface Destination {
  postfix: Postfix;
  address: string;
  cert: CertPair;
}

/** `cert`: the destination's own (a chain issued by a test CA, say); by default a self-signed one for mx.dest.test and the address. */
export async function startDestination(certDir?: string, withCert?: (address: string) => CertPair): Promise<Destination> {
  const address = await freeLoopbackAddress(25);
  const cert = withCert ? withCert(address) : makeCert(['mx.dest.test', address], certDir);
  const postfix = await startPostfix({
    smtpd: `${address}:25`,
    main: {
      myhostname: 'mx.dest.test',
      relay_domains: 'dest.test',
      relay_transport: 'discard',
      ...tls13Destination(cert),
      default_process_limit: '200',
    },
  });
  return { postfix, address, cert };
}

/**
 * A `serve` config with one `type: smtp` listener relaying to the destination. `connectionCache:
 * false` gives each client session its own upstream connection (to measure resumption per connection).
 */
export function smarthostConfig(o: {
  host: string;
  port: number;
  tls: string;
  audit: string;
  reuse?: string;
  connectionCache?: boolean;
}): string {
  return `listeners:
  - name: smarthost
    type: smtp
    listen: 127.0.0.1:0
    hostname: relay.bench.test
    maxConnections: 200
    route: { mode: relay, host: "${o.host}", port: ${o.port} }
    tls: ${o.tls}
${o.connectionCache === false ? '    connectionCache: { enabled: false }\n' : ''}${o.reuse ? `cache: { reuse: ${o.reuse} }\n` : ''}audit: { file: "${o.audit}" }
shutdownTimeoutSeconds: 5
`;
}
