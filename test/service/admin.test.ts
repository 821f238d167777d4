import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { AuditEvent, HandshakeEvent } from '../../src/audit/events.js';
import { parseConfig } from '../../src/config/load.js';
import { Service } from '../../src/service/service.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { sample } from '../support/metrics.js';
import { missing } from '../support/interop.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { freeTcpPort, getPlain, startNodeTlsServer, verdictPlain, type NodeTlsServer } from '../support/servers.js';

/**
 * The admin listener of a running Service: /metrics after real handshakes (counters checked
 * against what the TLS server saw), /healthz, /readyz (degraded, still ready, when the Redis store is
 * gone, and its return), and the `ticketbooth health` command's exit codes.
 */

const exec = promisify(execFile);

async function health(url: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'health', '--url', url, '--timeout', '2000']);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

describe('admin listener: metrics, health, readiness', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  let otherCa: CertPair;
  let server: NodeTlsServer;
  let service: Service;
  let admin: string;
  let held: Socket | undefined;
  const events: AuditEvent[] = [];

  const handshakes = (listener: string): HandshakeEvent[] =>
    events.filter((e): e is HandshakeEvent => e.event === 'tls.handshake' && e.listener === listener);

  async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        service.audit.off('event', on);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const on = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        service.audit.off('event', on);
        resolve();
      };
      service.audit.on('event', on);
    });
  }

  before(async () => {
    cert = makeCert(['localhost']);
    otherCa = makeCert(['localhost']);
    server = await startNodeTlsServer({ cert, minVersion: 'TLSv1.3' });
    const closedPort = await freeTcpPort();
    const upstream = (port: number, ca: string) => ({ host: '127.0.0.1', port, servername: 'localhost', ca });
    const config = parseConfig(
      JSON.stringify({
        listeners: [
          { name: 'good', type: 'tunnel', listen: '127.0.0.1:0', upstream: upstream(server.port, cert.certFile) },
          { name: 'down', type: 'tunnel', listen: '127.0.0.1:0', upstream: upstream(closedPort, cert.certFile) },
          { name: 'wrong-ca', type: 'tunnel', listen: '127.0.0.1:0', upstream: upstream(server.port, otherCa.certFile) },
          { name: 'closed', type: 'tunnel', listen: '127.0.0.1:0', allow: ['10.0.0.0/8'], upstream: upstream(server.port, cert.certFile) },
        ],
        admin: { listen: '127.0.0.1:0' },
        shutdownTimeoutSeconds: 2,
      }),
    );
    service = await Service.start(config);
    service.audit.on('event', (e) => events.push(e));
    admin = `http://127.0.0.1:${service.admin!.address().port}`;

    await verdictPlain(service.addressOf('good').port);
    await until(() => handshakes('good').length === 1, 'the first handshake');
    await verdictPlain(service.addressOf('good').port);
    await until(() => handshakes('good').length === 2, 'the second handshake');
    // A client that stays connected: counted as an active connection.
    held = connect({ host: '127.0.0.1', port: service.addressOf('good').port });
    await until(() => handshakes('good').length === 3, "the held connection's handshake");
    await getPlain(service.addressOf('down').port);
    await getPlain(service.addressOf('wrong-ca').port);
    await getPlain(service.addressOf('closed').port);
    // A refused connect is no handshake: it is an upstream.error line (stage connect).
    const connectFailed = (): boolean => events.some((e) => e.event === 'upstream.error' && e.listener === 'down');
    await until(
      () => connectFailed() && handshakes('wrong-ca').length === 1 && events.some((e) => e.event === 'client.refused'),
      'the failures',
    );
    // No SMTP listener here: the SMTP metric is fed the way the SMTP listener feeds it, through the audit log.
    service.audit.record({ event: 'smtp.transaction', listener: 'smtp', client: '127.0.0.1:1', recipients: 1, size: 10, code: 250, ms: 3 });
    service.audit.record({ event: 'smtp.transaction', listener: 'smtp', client: '127.0.0.1:1', recipients: 1, size: 10, code: 451, ms: 3 });
  });

  after(async () => {
    held?.destroy();
    await service?.stop(1000);
    await server?.stop();
  });

  test('handshake counters match what the TLS server saw', async () => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    const good = { listener: 'good', destination_class: `127.0.0.1:${server.port}` };
    assert.equal(server.stats.handshakes, 3);
    assert.equal(sample(text, 'ticketbooth_tls_handshakes_total', good), server.stats.handshakes);
    assert.equal(
      sample(text, 'ticketbooth_tls_handshakes_total', { ...good, resumed: 'true', offered: 'tls13-ticket', protocol: 'TLSv1.3' }),
      server.stats.resumed,
    );
    assert.equal(
      sample(text, 'ticketbooth_tls_handshakes_total', { ...good, resumed: 'false', offered: 'none' }),
      server.stats.handshakes - server.stats.resumed,
    );
    assert.equal(
      sample(text, 'ticketbooth_tls_full_handshakes_total', { ...good, cause: 'nothing-offered' }),
      server.stats.handshakes - server.stats.resumed,
    );
    const received = handshakes('good').reduce((n, e) => n + e.ticketsReceived, 0);
    assert.equal(sample(text, 'ticketbooth_tls_tickets_received_total', good), received);
    assert.equal(received, 2 * (server.stats.handshakes - server.stats.resumed), 'Node: 2 tickets per full handshake, none on resumption');
    assert.equal(sample(text, 'ticketbooth_tls_handshake_duration_seconds_count', { listener: 'good' }), 3);
  });

  test('tickets and destinations cached, from the store; active connections per listener', async () => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    const size = await service.store.health.size();
    assert.equal(sample(text, 'ticketbooth_tickets_cached'), size.tickets);
    assert.equal(
      size.tickets,
      2 * (server.stats.handshakes - server.stats.resumed) - server.stats.resumed,
      'single use: each resumption spent one',
    );
    assert.equal(sample(text, 'ticketbooth_destinations_cached'), size.destinations);
    assert.ok(size.destinations >= 1);
    assert.equal(sample(text, 'ticketbooth_active_connections', { listener: 'good' }), 1);
    assert.equal(sample(text, 'ticketbooth_active_connections', { listener: 'down' }), 0);
  });

  test('upstream errors by cause, refused clients, SMTP results', async () => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    assert.equal(sample(text, 'ticketbooth_upstream_errors_total', { listener: 'down', cause: 'connect' }), 1);
    assert.equal(sample(text, 'ticketbooth_upstream_errors_total', { listener: 'wrong-ca', cause: 'certificate' }), 1);
    assert.equal(sample(text, 'ticketbooth_clients_refused_total', { listener: 'closed', reason: 'allow-list' }), 1);
    assert.equal(sample(text, 'ticketbooth_smtp_transactions_total', { listener: 'smtp', result: '2xx' }), 1);
    assert.equal(sample(text, 'ticketbooth_smtp_transactions_total', { listener: 'smtp', result: '4xx' }), 1);
    assert.ok(sample(text, 'process_resident_memory_bytes')! > 0, 'process metrics too');
  });

  test('/healthz, /readyz, 404, and `ticketbooth health` exits 0 when ready, 1 when nothing answers', async () => {
    const healthz = await fetch(`${admin}/healthz`);
    assert.equal(healthz.status, 200);
    const readyz = await fetch(`${admin}/readyz`);
    assert.equal(readyz.status, 200);
    assert.equal(await readyz.text(), 'ready\n');
    assert.equal((await fetch(`${admin}/nope`)).status, 404);
    assert.equal((await health(`${admin}/readyz`)).code, 0);
    const nobody = await health(`http://127.0.0.1:${await freeTcpPort()}/readyz`);
    assert.equal(nobody.code, 1);
    assert.match(nobody.out, /ECONNREFUSED/);
  });
});

describe('readiness while shutting down', { skip: missing('openssl') }, () => {
  test('/readyz answers 503 while open sessions drain, and `health` exits 1', async () => {
    const cert = makeCert(['localhost']);
    const server = await startNodeTlsServer({ cert, minVersion: 'TLSv1.3' });
    const service = await Service.start(
      parseConfig(
        JSON.stringify({
          listeners: [
            {
              name: 't',
              type: 'tunnel',
              listen: '127.0.0.1:0',
              upstream: { host: '127.0.0.1', port: server.port, servername: 'localhost', ca: cert.certFile },
            },
          ],
          admin: { listen: '127.0.0.1:0' },
        }),
      ),
    );
    const url = `http://127.0.0.1:${service.admin!.address().port}/readyz`;
    const handshake = new Promise((resolve) => service.audit.once('event', resolve));
    const client = connect({ host: '127.0.0.1', port: service.addressOf('t').port });
    await handshake;
    assert.equal((await fetch(url)).status, 200);
    const stopped = service.stop(10_000);
    const draining = await fetch(url);
    assert.equal(draining.status, 503);
    assert.equal(await draining.text(), 'not ready: shutting down\n');
    const probe = await health(url);
    assert.equal(probe.code, 1);
    assert.match(probe.out, /503 not ready: shutting down/);
    client.destroy();
    await stopped;
    await server.stop();
  });
});

describe('a Redis outage degrades the instance, it stays ready', { skip: missing('redis-server') }, () => {
  let redis: RedisServer;
  let service: Service;

  before(async () => {
    redis = await startRedisServer();
    service = await Service.start(
      parseConfig(
        JSON.stringify({
          listeners: [{ name: 't', type: 'tunnel', listen: '127.0.0.1:0', upstream: { host: '127.0.0.1', port: 1, verify: false } }],
          cache: { store: { type: 'redis', url: redis.url } },
          admin: { listen: '127.0.0.1:0' },
        }),
      ),
    );
  });

  after(async () => {
    await service?.stop(1000);
    await redis?.stop();
  });

  test('/readyz pings the store: still 200 but "degraded" naming Redis while it is away (the fleet keeps serving), plain again once it is back', async () => {
    const url = `http://127.0.0.1:${service.admin!.address().port}/readyz`;
    assert.equal(await (await fetch(url)).text(), 'ready\n');
    await redis.stop();
    const away = await fetch(url);
    assert.equal(away.status, 200);
    assert.match(await away.text(), /^ready \(degraded: ticket store: Redis at redis:\/\/127\.0\.0\.1:\d+\/? does not answer/);
    const probe = await health(url);
    assert.equal(probe.code, 0);
    // The same port again: ioredis reconnects on its own, and readiness follows.
    redis = await startRedisServer([], redis.port);
    const deadline = Date.now() + 10_000;
    let body = '';
    while (Date.now() < deadline && (body = await (await fetch(url)).text()) !== 'ready\n') await new Promise((r) => setTimeout(r, 100));
    assert.equal(body, 'ready\n');
  });
});
