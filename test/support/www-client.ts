import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';

/** The server's own verdict on a connection, from an `s_server -www` (or test server) page. */
export interface Verdict {
  verdict: 'New' | 'Reused';
  protocol: string;
  cipher: string;
}

const VERDICT = /^(New|Reused), (TLSv1\.[0-3]|TLSv1), Cipher is (\S+)/m;

export function parseVerdict(page: string): Verdict {
  const m = VERDICT.exec(page);
  if (!m) throw new Error(`no New/Reused verdict in the page: ${JSON.stringify(page.slice(0, 200))}`);
  return { verdict: m[1] as Verdict['verdict'], protocol: m[2], cipher: m[3] };
}

const REQUEST = 'GET / HTTP/1.0\r\n\r\n';

/** `GET /` in cleartext (through a tunnel); resolves with the page when the server closes. */
export function getPlain(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<string> {
  const socket = connectTcp({ host, port });
  socket.on('connect', () => socket.write(REQUEST));
  return readUntilClose(socket, `GET via ${host}:${port}`, timeoutMs);
}

/** `GET /` via cleartext, read the server's verdict. */
export async function verdictPlain(port: number, host = '127.0.0.1'): Promise<Verdict> {
  return parseVerdict(await getPlain(port, host));
}

export interface TlsGet {
  page: string;
  /** Every DER session Node handed out on this connection (TLS 1.3: one per ticket). */
  sessions: Buffer[];
  resumed: boolean;
  protocol: string | null;
}

/** `GET /` over TLS directly (no proxy), keeping every session the server hands out. */
export async function getTls(options: ConnectionOptions, timeoutMs = 10_000): Promise<TlsGet> {
  const sessions: Buffer[] = [];
  let resumed = false;
  let protocol: string | null = null;
  const socket = connectTls(options);
  socket.on('session', (s: Buffer) => sessions.push(s));
  socket.on('secureConnect', () => {
    resumed = socket.isSessionReused();
    protocol = socket.getProtocol();
    socket.write(REQUEST);
  });
  const page = await readUntilClose(socket, `TLS GET to ${options.host}:${options.port}`, timeoutMs);
  return { page, sessions, resumed, protocol };
}

/** Everything `socket` receives until the server closes it; fails on a socket error or after `timeoutMs`. */
function readUntilClose(socket: Socket, what: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${what}: no close within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}
