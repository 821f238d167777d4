import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { before, describe, test } from 'node:test';
import type { AuditEvent } from '../../src/audit/events.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startNodeTlsServer } from '../support/servers.js';
import { startTunnelService } from '../support/tunnel-service.js';

/** The tunnel's `timeouts`: a silent upstream fails the setup in time; a silent session is closed. */

/** Connects and collects everything until the tunnel closes the connection (fails if it never does). */
function collectUntilClose(port: number, timeoutMs = 5000): Promise<{ data: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the tunnel did not close the connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => (data += c.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data });
    });
  });
}

/** A TCP server that accepts and never says a word (no TLS ServerHello, no SMTP greeting). */
async function silentServer(): Promise<{ port: number; accepted: () => number; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    accepted: () => accepted,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('tunnel timeouts', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  test('implicit TLS to a silent upstream fails at setupSeconds with ERR_UPSTREAM_TIMEOUT in the audit line', async () => {
    const upstream = await silentServer();
    const tb = await startTunnelService({
      upstream: { host: '127.0.0.1', port: upstream.port, servername: 'localhost', ca: cert.certFile },
      timeouts: { setupSeconds: 0.5 },
    });
    try {
      const { data } = await collectUntilClose(tb.port);
      assert.equal(data, '', 'a plain TLS client gets nothing, just the close');
      const [line] = await tb.waitFor((e: AuditEvent) => e.event === 'tls.handshake');
      assert.equal(line.event === 'tls.handshake' && line.errorCode, 'ERR_UPSTREAM_TIMEOUT');
      assert.equal(upstream.accepted(), 1);
    } finally {
      await tb.stop();
      await upstream.stop();
    }
  });

  test('SMTP STARTTLS to an upstream that never greets: 421 to the client, upstream.error at stage greeting', async () => {
    const upstream = await silentServer();
    const tb = await startTunnelService({
      upstream: { host: '127.0.0.1', port: upstream.port, starttls: 'smtp', servername: 'localhost', ca: cert.certFile },
      timeouts: { setupSeconds: 0.5 },
    });
    try {
      const { data } = await collectUntilClose(tb.port);
      assert.match(data, /^421 4\.7\.0 /);
      const [line] = await tb.waitFor((e: AuditEvent) => e.event === 'upstream.error');
      assert.equal(line.event === 'upstream.error' && line.stage, 'greeting');
    } finally {
      await tb.stop();
      await upstream.stop();
    }
  });

  test('a session silent both ways is closed after idleSeconds, and its upstream with it', async () => {
    const server = await startNodeTlsServer({ cert });
    const tb = await startTunnelService({
      upstream: { host: server.host, port: server.port, servername: 'localhost', ca: cert.certFile },
      timeouts: { idleSeconds: 0.5 },
    });
    try {
      // Connect and say nothing: the tunnel dials, the handshake completes, then no byte moves.
      const closed = collectUntilClose(tb.port);
      await tb.waitFor((e: AuditEvent) => e.event === 'tls.handshake');
      const { data } = await closed;
      assert.equal(data, '');
      await server.closedAtLeast(1);
      assert.equal(server.stats.handshakes, 1);
      assert.equal(tb.service.listeners[0].activeConnections, 0);
    } finally {
      await tb.stop();
      await server.stop();
    }
  });
});
