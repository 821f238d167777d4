import { Resolver } from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

/**
 * An HTTP CONNECT proxy on loopback, as an egress gateway's: it resolves names through the given
 * DNS server (the test's), opens the tunnel and counts what it was asked for.
 */
export interface ConnectProxy {
  url: string;
  /** `host:port` of every CONNECT, in order. */
  requests: string[];
  stop(): Promise<void>;
}

export async function startConnectProxy(dnsServer: string): Promise<ConnectProxy> {
  const resolver = new Resolver();
  resolver.setServers([dnsServer]);
  const requests: string[] = [];
  const tunnels = new Set<{ destroy(): void }>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client) => {
    const target = req.url ?? '';
    requests.push(target);
    const [host, port] = [target.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(target)?.[1] ?? 443)];
    client.on('error', () => client.destroy());
    tunnels.add(client);
    client.on('close', () => tunnels.delete(client));
    resolver.resolve4(host).then(
      ([address]) => {
        const upstream = connect(port, address, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          upstream.pipe(client).pipe(upstream);
        });
        upstream.on('error', () => client.destroy());
      },
      () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const t of tunnels) t.destroy(); // upgraded by CONNECT: not the HTTP server's to close
      }),
  };
}
