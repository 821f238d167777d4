import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { HttpProxyAgent } from 'http-proxy-agent';
import type { AuditEvent, ClientRefusedEvent, HandshakeEvent } from '../../src/audit/events.js';
import { configSchema } from '../../src/config/schema.js';
import { Service } from '../../src/service/service.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startSServer, type SServer } from '../support/servers.js';

/**
 * HTTP egress end to end: a legacy client sends plain `http://` requests through ticketbooth
 * (with http-proxy-agent, as a client honouring `http_proxy` would); the origins speak only TLS.
 */

interface OriginRequest {
  method: string;
  url: string;
  host: string | undefined;
  tls: boolean;
  resumed: boolean;
  protocol: string | null;
  bodySha256: string;
}

/** A Node https origin (TLS 1.3: 2 tickets per full handshake, none on resumption) that records what it saw. */
async function startOrigin(
  cert: CertPair,
  payload: Buffer,
): Promise<{ server: HttpsServer; port: number; seen: OriginRequest[]; headers: string[][] }> {
  const seen: OriginRequest[] = [];
  const headers: string[][] = [];
  const server = createHttpsServer({ cert: cert.cert, key: cert.key, minVersion: 'TLSv1.3' }, (req, res) => {
    const socket = req.socket as TLSSocket;
    headers.push(req.rawHeaders);
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => hash.update(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        host: req.headers.host,
        tls: socket.encrypted === true,
        resumed: socket.isSessionReused(),
        protocol: socket.getProtocol(),
        bodySha256: hash.digest('hex'),
      });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-origin': 'node-https' });
      res.end(payload);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, seen, headers };
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** One request through the proxy, a fresh client connection each time (as many legacy clients do). */
function viaProxy(proxyPort: number, url: string, opts: { method?: string; body?: Buffer } = {}): Promise<Reply> {
  const agent = new HttpProxyAgent(`http://127.0.0.1:${proxyPort}`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, method: opts.method ?? 'GET', timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer for ${url} within 15 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Collects a service's audit events; `next` waits (bounded) for the next one that matches. */
function auditOf(service: Service) {
  const events: AuditEvent[] = [];
  const waiters: Array<{ pred: (e: AuditEvent) => boolean; resolve: (e: AuditEvent) => void }> = [];
  service.audit.on('event', (e) => {
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  return {
    events,
    handshakes: () => events.filter((e): e is HandshakeEvent => e.event === 'tls.handshake'),
    /** Resolves with the n-th (1-based) event matching `pred`, once it exists. */
    nth<T extends AuditEvent>(n: number, pred: (e: AuditEvent) => e is T, timeoutMs = 10_000): Promise<T> {
      const have = events.filter(pred);
      if (have.length >= n) return Promise.resolve(have[n - 1]);
      return new Promise((resolve, reject) => {
        let count = have.length;
        const timer = setTimeout(() => reject(new Error(`audit event #${n} not seen within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          pred: (e) => pred(e) && ++count >= n,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e as T);
          },
        });
      });
    },
  };
}

const isHandshake = (e: AuditEvent): e is HandshakeEvent => e.event === 'tls.handshake';
const isRefusal = (e: AuditEvent): e is ClientRefusedEvent => e.event === 'client.refused';

function start(listener: Record<string, unknown>): Promise<Service> {
  return Service.start(configSchema.parse({ listeners: [{ name: 'web', type: 'http', listen: '127.0.0.1:0', ...listener }] }));
}

describe('http egress to a Node https origin', () => {
  const cert = makeCert(['localhost']);
  const payload = randomBytes(300_000);
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let service: Service;
  let audit: ReturnType<typeof auditOf>;
  let proxyPort: number;

  before(async () => {
    origin = await startOrigin(cert, payload);
    // A connection per request: these tests count handshakes and resumption (kept connections: below).
    service = await start({ upstreams: { localhost: { ca: cert.certFile } }, connectionCache: { enabled: false } });
    audit = auditOf(service);
    proxyPort = service.addressOf('web').port;
  });
  after(async () => {
    await service?.stop(1000);
    origin?.server.closeAllConnections();
    origin?.server.close();
  });

  test('plain http:// requests reach the origin over TLS, later ones resume, bodies arrive intact', async () => {
    const url = `http://localhost:${origin.port}/files/blob?x=1`;
    const upload = randomBytes(50_000);
    const replies: Reply[] = [];
    for (let i = 1; i <= 3; i++) {
      replies.push(await viaProxy(proxyPort, url, { method: 'POST', body: upload }));
      await audit.nth(i, isHandshake); // the tickets of this connection are stored before the next one
    }
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-origin'], 'node-https');
      assert.ok(r.body.equals(payload), `response body changed on the way (${r.body.length} bytes)`);
    }
    assert.equal(origin.seen.length, 3);
    for (const s of origin.seen) {
      assert.equal(s.tls, true);
      assert.equal(s.protocol, 'TLSv1.3');
      assert.equal(s.method, 'POST');
      assert.equal(s.url, '/files/blob?x=1');
      assert.equal(s.host, `localhost:${origin.port}`);
      assert.equal(s.bodySha256, createHash('sha256').update(upload).digest('hex'), 'request body changed on the way');
    }
    // Node's server issues 2 tickets per full handshake and none on resumption: 1 full, then 2 resumed.
    assert.deepEqual(
      origin.seen.map((s) => s.resumed),
      [false, true, true],
    );
    const lines = audit.handshakes();
    assert.deepEqual(
      lines.map((e) => [e.listener, e.destination, e.offered, e.resumed]),
      [
        ['web', `localhost:${origin.port}`, 'none', false],
        ['web', `localhost:${origin.port}`, 'tls13-ticket', true],
        ['web', `localhost:${origin.port}`, 'tls13-ticket', true],
      ],
    );
    assert.equal(lines[0].ticketsReceived, 2);
    assert.notEqual(lines[1].offeredHash, lines[2].offeredHash);
  });

  test('CONNECT is refused with 405 and a reason; nothing is dialed', async () => {
    const before = audit.handshakes().length;
    const socket = connectTcp({ host: '127.0.0.1', port: proxyPort });
    socket.write(`CONNECT localhost:${origin.port} HTTP/1.1\r\nHost: localhost:${origin.port}\r\n\r\n`);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'close');
    const answer = Buffer.concat(chunks).toString('utf8');
    assert.match(answer, /^HTTP\/1\.1 405 /);
    assert.match(answer, /CONNECT is not supported/);
    assert.match(answer, /allow: GET/i);
    assert.equal(audit.handshakes().length, before);
  });

  test('an origin whose certificate does not verify gives the client a 502 that says why', async () => {
    // Not in the upstreams table: defaults apply (system CAs), so the test CA is unknown.
    const byIp = await viaProxy(proxyPort, `http://127.0.0.1:${origin.port}/`);
    assert.equal(byIp.status, 502);
    assert.match(
      byIp.body.toString(),
      new RegExp(`no TLS connection to the origin: 127\\.0\\.0\\.1:${origin.port}: .*self-signed certificate`),
    );
    const failed = await audit.nth(1, (e): e is HandshakeEvent => isHandshake(e) && e.error !== undefined);
    assert.match(failed.error ?? '', /self-signed certificate/);
    assert.equal(failed.destination, `127.0.0.1:${origin.port}`);
  });

  test('the right CA but the wrong name is refused too', async () => {
    const other = await start({ upstreams: { '127.0.0.1': { ca: cert.certFile } } });
    try {
      const r = await viaProxy(other.addressOf('web').port, `http://127.0.0.1:${origin.port}/`);
      assert.equal(r.status, 502);
      assert.match(r.body.toString(), /no TLS connection to the origin: .*Hostname\/IP does not match certificate's altnames/);
    } finally {
      await other.stop(1000);
    }
    assert.ok(
      origin.seen.every((s) => s.host !== `127.0.0.1:${origin.port}`),
      'no request reached the origin unverified',
    );
  });

  test('a client outside the allow list gets 403 and a client.refused line; the origin sees nothing', async () => {
    const closed = await start({ allow: ['10.0.0.0/8'], upstreams: { localhost: { ca: cert.certFile } } });
    const closedAudit = auditOf(closed);
    const seenBefore = origin.seen.length;
    try {
      const r = await viaProxy(closed.addressOf('web').port, `http://localhost:${origin.port}/`);
      assert.equal(r.status, 403);
      assert.match(r.body.toString(), /may not use the proxy/);
      const refused = await closedAudit.nth(1, isRefusal);
      assert.equal(refused.reason, 'allow-list');
      assert.equal(refused.listener, 'web');
      assert.match(refused.client, /^127\.0\.0\.1:\d+$/);
    } finally {
      await closed.stop(1000);
    }
    assert.equal(origin.seen.length, seenBefore);
    assert.equal(closedAudit.handshakes().length, 0);
  });
});

describe('http egress keeps origin connections alive between requests', () => {
  const cert = makeCert(['localhost']);
  const payload = randomBytes(20_000);
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let handshakes = 0;

  before(async () => {
    origin = await startOrigin(cert, payload);
    origin.server.on('secureConnection', () => handshakes++);
  });
  after(() => {
    origin?.server.closeAllConnections();
    origin?.server.close();
  });

  async function sequential(
    listener: Record<string, unknown>,
    urls: string[],
  ): Promise<{ replies: Reply[]; handshakes: number; service: Service }> {
    const service = await start(listener);
    const before = handshakes;
    const replies: Reply[] = [];
    try {
      for (const url of urls) replies.push(await viaProxy(service.addressOf('web').port, url));
    } finally {
      await service.stop(1000);
    }
    return { replies, handshakes: handshakes - before, service };
  }

  test('50 sequential requests, a client connection each: one origin handshake, every body intact', async () => {
    const url = `http://localhost:${origin.port}/kept`;
    const seen = origin.seen.length;
    const {
      replies,
      handshakes: n,
      service,
    } = await sequential({ upstreams: { localhost: { ca: cert.certFile } } }, Array<string>(50).fill(url));
    assert.equal(n, 1, 'the origin saw one TLS connection');
    assert.equal(origin.seen.length - seen, 50);
    assert.ok(replies.every((r) => r.status === 200 && r.body.equals(payload)));
    const stats = service.listeners[0].upstreamPool!.stats;
    assert.equal(stats.reused, 49);
  });

  test('connectionCache enabled: false: a handshake per request', async () => {
    const url = `http://localhost:${origin.port}/each`;
    const { handshakes: n } = await sequential(
      { upstreams: { localhost: { ca: cert.certFile } }, connectionCache: { enabled: false } },
      Array<string>(5).fill(url),
    );
    assert.equal(n, 5);
  });

  test('two names for one origin (two trust keys: host, SNI) never share a connection', async () => {
    const listener = {
      upstreams: { localhost: { ca: cert.certFile }, '127.0.0.1': { ca: cert.certFile, servername: 'localhost' } },
    };
    const urls = [0, 1, 2].flatMap(() => [`http://localhost:${origin.port}/a`, `http://127.0.0.1:${origin.port}/b`]);
    const { replies, handshakes: n } = await sequential(listener, urls);
    assert.ok(replies.every((r) => r.status === 200));
    assert.equal(n, 2, 'one kept connection per trust key');
  });

  test("a client's Proxy-Connection: close is not passed on (the origin would close the kept connection)", async () => {
    const { service } = await sequential({ upstreams: { localhost: { ca: cert.certFile } } }, [`http://localhost:${origin.port}/pc`]);
    assert.equal(service.listeners[0].upstreamPool!.stats.pooled, 1);
    assert.ok(!origin.headers.some((h) => h.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'proxy-connection')));
  });
});

// Node's HTTP server drops an idle keep-alive connection after 5 s by itself: the 4 s limit tells
// a stop that closes it from one that merely waits.
test('stop closes idle keep-alive client connections instead of waiting out the timeout', { timeout: 4_000 }, async () => {
  const cert = makeCert(['localhost']);
  const origin = await startOrigin(cert, Buffer.from('hello'));
  const service = await start({ upstreams: { localhost: { ca: cert.certFile } } });
  const agent = new HttpProxyAgent(`http://127.0.0.1:${service.addressOf('web').port}`, { keepAlive: true });
  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      httpRequest(`http://localhost:${origin.port}/`, { agent }, resolve).on('error', reject).end();
    });
    const client = res.socket; // detached from the response (kept for reuse) once it ends
    res.resume();
    await once(res, 'end');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers.connection, 'keep-alive');
    assert.ok(!client.destroyed, 'the client keeps its connection open');
    const clientClosed = once(client, 'close');
    assert.equal(service.listeners[0].activeConnections, 1);
    // A 60 s drain timeout: if the idle connection were waited for, the test's limit fails it.
    await service.stop(60_000);
    await clientClosed;
  } finally {
    agent.destroy();
    origin.server.closeAllConnections();
    origin.server.close();
  }
});

describe('http egress to openssl s_server -www', { skip: missing('openssl') }, () => {
  const cert = makeCert(['localhost']);
  let server: SServer;
  let service: Service;
  let audit: ReturnType<typeof auditOf>;

  before(async () => {
    // Renews on every resumption: every request after the first can resume.
    server = await startSServer('tls13', cert);
    service = await start({ upstreams: { [`localhost:${server.port}`]: { ca: cert.certFile } } });
    audit = auditOf(service);
  });
  after(async () => {
    await service?.stop(1000);
    await server?.stop();
  });

  test("every request after the first resumes, by the server's own verdict", async () => {
    const verdicts: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const r = await viaProxy(service.addressOf('web').port, `http://localhost:${server.port}/`);
      assert.equal(r.status, 200);
      const m = /^(New|Reused), (TLSv1\.3), Cipher is/m.exec(r.body.toString());
      assert.ok(m, `no verdict in the page: ${r.body.toString().slice(0, 200)}`);
      verdicts.push(m[1]);
      await audit.nth(i, isHandshake);
    }
    assert.deepEqual(verdicts, ['New', 'Reused', 'Reused', 'Reused', 'Reused', 'Reused']);
    const offered = audit
      .handshakes()
      .slice(1)
      .map((e) => e.offeredHash);
    assert.equal(new Set(offered).size, 5, 'each ticket offered once');
  });
});
