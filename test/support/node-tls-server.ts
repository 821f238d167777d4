import { EventEmitter } from 'node:events';
import { createServer, type TLSSocket } from 'node:tls';
import type { CertPair } from './certs.js';
import { listenOnLoopback } from './loopback-listen.js';

/**
 * A Node.js TLS server with Node's own ticket behaviour (TLS 1.3: 2 tickets per full handshake,
 * none on a resumed one). It speaks a tiny line protocol:
 * - `GET ...`  : a page with the server's verdict, `New, TLSv1.3, Cipher is ...` or `Reused, ...`;
 * - `SEND n`   : n bytes of payload, then close (download throughput);
 * - `RECV n`   : reads n bytes, answers `OK`, then close (upload throughput).
 */
export interface NodeTlsServer {
  host: string;
  port: number;
  /** Handshakes completed / of which resumed / TLS connections since closed, as the server saw them. */
  stats: { handshakes: number; resumed: number; closed: number };
  /** Resolves once `count` TLS connections have closed (bounded by `timeoutMs`). */
  closedAtLeast(count: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface NodeTlsServerOptions {
  cert: CertPair;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Ticket lifetime (the hint clients see), seconds. */
  sessionTimeout?: number;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

export async function startNodeTlsServer(opts: NodeTlsServerOptions): Promise<NodeTlsServer> {
  const stats = { handshakes: 0, resumed: 0, closed: 0 };
  const closes = new EventEmitter();
  const server = createServer(
    {
      cert: opts.cert.cert,
      key: opts.cert.key,
      allowHalfOpen: true, // answers a client that half-closed after its request
      minVersion: opts.minVersion ?? 'TLSv1.2',
      maxVersion: opts.maxVersion ?? 'TLSv1.3',
      ...(opts.sessionTimeout ? { sessionTimeout: opts.sessionTimeout } : {}),
    },
    (socket) => {
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        stats.closed++;
        closes.emit('close');
      });
      stats.handshakes++;
      const reused = socket.isSessionReused();
      if (reused) stats.resumed++;
      serve(socket, reused);
    },
  );
  const { host, port, stop } = await listenOnLoopback(server);
  return {
    host,
    port,
    stats,
    closedAtLeast: (count, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (stats.closed < count) return;
          clearTimeout(timer);
          closes.off('close', check);
          resolve();
        };
        const timer = setTimeout(() => {
          closes.off('close', check);
          reject(new Error(`${stats.closed} of ${count} TLS connections closed after ${timeoutMs} ms`));
        }, timeoutMs);
        closes.on('close', check);
        check();
      }),
    stop,
  };
}

function serve(socket: TLSSocket, reused: boolean): void {
  let head = '';
  const onData = (chunk: Buffer): void => {
    head += chunk.toString('latin1');
    const nl = head.indexOf('\n');
    if (nl < 0) return;
    socket.off('data', onData);
    const line = head.slice(0, nl).trim();
    const rest = Buffer.from(head.slice(nl + 1), 'latin1');
    const [verb, arg] = line.split(/\s+/);
    if (verb === 'SEND') return send(socket, Number(arg));
    if (verb === 'RECV') return receive(socket, Number(arg), rest.length);
    const page = `HTTP/1.0 200 ok\r\n\r\n${reused ? 'Reused' : 'New'}, ${socket.getProtocol()}, Cipher is ${socket.getCipher().standardName}\n`;
    socket.end(page);
  };
  socket.on('data', onData);
  socket.once('end', () => {
    if (!head.includes('\n')) socket.end(); // no request came: nothing to answer
  });
}

function send(socket: TLSSocket, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
}

function receive(socket: TLSSocket, total: number, already: number): void {
  let got = already;
  const check = (): void => {
    if (got >= total) {
      socket.off('data', onData);
      socket.end('OK\n');
    }
  };
  const onData = (chunk: Buffer): void => {
    got += chunk.length;
    check();
  };
  socket.on('data', onData);
  check();
}
