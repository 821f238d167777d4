import { once } from 'node:events';
import { connect } from 'node:net';
import { before, describe, test } from 'node:test';
import { createSecureContext, createServer, type Server } from 'node:tls';
import type { AuditEvent } from '../../src/audit/events.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startTunnelService } from '../support/tunnel-service.js';
import { until } from '../support/until.js';

/**
 * Clients that leave while the upstream is still being set up (health checks: connect, then FIN
 * or RST) must not hold a session slot or an upstream connection.
 */

/** A TLS server whose handshake waits until the test releases it (its SNI callback is held). */
async function heldServer(cert: CertPair): Promise<{ server: Server; port: number; held: Array<() => void>; closed: () => number }> {
  const context = createSecureContext({ cert: cert.cert, key: cert.key });
  const held: Array<() => void> = [];
  let closed = 0;
  const server = createServer({ cert: cert.cert, key: cert.key, SNICallback: (_name, cb) => held.push(() => cb(null, context)) }, (s) => {
    s.on('error', () => undefined);
    s.on('close', () => closed++);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, held, closed: () => closed };
}

describe('tunnel: a client that goes during upstream setup', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  for (const how of ['reset', 'FIN'] as const) {
    test(`by ${how}: the session ends and its upstream is closed once the handshake completes`, async () => {
      const up = await heldServer(cert);
      const tb = await startTunnelService({
        upstream: { host: '127.0.0.1', port: up.port, servername: 'localhost', ca: cert.certFile },
        timeouts: { idleSeconds: 0 }, // no idle timer to clean up after us: the fix must do it
      });
      try {
        const client = connect({ host: '127.0.0.1', port: tb.port });
        client.on('error', () => undefined);
        await once(client, 'connect');
        await until(() => up.held.length === 1, 10_000, "the tunnel's ClientHello at the server");
        if (how === 'reset') client.resetAndDestroy();
        else client.end();
        await once(client, how === 'reset' ? 'close' : 'finish');
        // Let the server finish its handshake now that the client is gone.
        up.held.shift()?.();
        await tb.waitFor((e: AuditEvent) => e.event === 'tls.handshake');
        await until(() => tb.service.listeners[0].activeConnections === 0, 10_000, 'the session to end');
        await until(() => up.closed() === 1, 10_000, 'the upstream to close');
      } finally {
        await tb.stop(500);
        up.server.close();
      }
    });
  }
});
