import { createConnection, type Socket } from 'node:net';
import { connect, createServer } from 'node:tls';
import { type Attrs, AttrReader, encodeAttrs } from '../../src/tlsmgr/attr0.js';
import { unwrapSession } from '../../src/resumption/session-envelope.js';
import { makeCert } from './certs.js';

/** A tlsmgr client as Postfix's tls_mgr.c is: read the announcement, then request, reply, request ... */
export class RawTlsmgrClient {
  private readonly reader = new AttrReader(1 << 20);
  private readonly lists: Attrs[] = [];
  private waiter?: () => void;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.lists.push(...this.reader.push(c));
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(path: string): Promise<RawTlsmgrClient> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawTlsmgrClient(socket);
  }

  /** The next attribute list the server sent; undefined when it closed first. */
  async next(timeoutMs = 5000): Promise<Attrs | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.lists.length === 0 && !this.closed) {
      if (Date.now() > deadline) throw new Error('no reply');
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50);
      });
    }
    return this.lists.shift();
  }

  async request(attrs: Array<[string, string]>): Promise<Attrs | undefined> {
    this.socket.write(encodeAttrs(attrs));
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Bare i2d_SSL_SESSION DER of TLS 1.3 tickets a local Node server issued (as smtp(8) passivates them). */
export async function freshTls13Sessions(): Promise<Buffer[]> {
  const cert = makeCert(['localhost']);
  const server = createServer({ cert: cert.cert, key: cert.key, minVersion: 'TLSv1.3' }, (s) => s.end('x'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const sessions: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false });
    c.on('session', (s: Buffer) => sessions.push(unwrapSession(s).der));
    c.on('error', reject);
    c.on('close', () => resolve());
    c.resume();
  });
  server.close();
  return sessions;
}
