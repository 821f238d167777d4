import { createSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';

/**
 * A TCP port free right now on `host` (listen on 0, close, hand it out), for programs that cannot
 * listen on port 0 (haproxy, redis-server, postfix). Another process may take it before the
 * program binds: callers that can, retry with a fresh one.
 */
export function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A UDP port free right now on 127.0.0.1 (for dnsmasq, which cannot bind port 0 and report it). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A loopback address of 127.0.0.0/8 other than 127.0.0.1 on which nothing listens on `port`:
 * MX hosts need port 25, and other test files may hold 127.0.0.2:25 at the same time.
 */
export async function freeLoopbackAddress(port: number): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const a = `127.${2 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 256)}.${2 + Math.floor(Math.random() * 250)}`;
    const refused = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: a, port });
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(true));
    });
    if (refused) return a;
  }
  throw new Error(`no free loopback address for port ${port}`);
}
