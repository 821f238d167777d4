import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { before, describe, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { parseSession } from '../../src/resumption/session-der.js';
import { targetFromConfig } from '../../src/upstream/target-from-config.js';
import { keyOf } from '../../src/upstream/tls-target.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startNodeTlsServer, startSServer, verdictPlain, type SServerMode } from '../support/servers.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../support/tunnel-service.js';

/**
 * Plaintext in, TLS out, through `Service.start(config)`: the upstream server's own page says
 * whether each connection was `New` or `Reused`, and the audit line must agree with it.
 */

/** Reads until the peer closes: every byte it sent, and whether anything arrived at all. */
function exchange(port: number, send: string | Buffer, opts: { halfClose?: boolean } = {}, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no close in time'));
    }, timeoutMs);
    socket.on('connect', () => (opts.halfClose ? socket.end(send) : socket.write(send)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset is an answer too: the close follows
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

const EXPECT: Record<SServerMode, { protocol: string; offered: HandshakeEvent['offered']; sameHash: boolean }> = {
  tls13: { protocol: 'TLSv1.3', offered: 'tls13-ticket', sameHash: false },
  'tls13-anti-replay': { protocol: 'TLSv1.3', offered: 'tls13-ticket', sameHash: false },
  'tls13-stateful': { protocol: 'TLSv1.3', offered: 'tls13-ticket', sameHash: false },
  'tls12-tickets': { protocol: 'TLSv1.2', offered: 'tls12-session', sameHash: true },
  'tls12-session-ids': { protocol: 'TLSv1.2', offered: 'tls12-session', sameHash: true },
};

describe('tunnel end to end', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  for (const mode of Object.keys(EXPECT) as SServerMode[]) {
    test(`s_server ${mode}: first connection New, then Reused, as the server says and the audit agrees`, async () => {
      const s = await startSServer(mode, cert);
      const h = await startTunnelService({ upstream: { host: s.host, port: s.port, servername: 'localhost', ca: cert.certFile } });
      try {
        const verdicts = [];
        for (let i = 0; i < 5; i++) verdicts.push(await verdictPlain(h.port));
        assert.deepEqual(
          verdicts.map((v) => v.verdict),
          ['New', 'Reused', 'Reused', 'Reused', 'Reused'],
        );
        assert.ok(verdicts.every((v) => v.protocol === EXPECT[mode].protocol));
        const hs = (await h.waitFor(isHandshake, 5)) as HandshakeEvent[];
        assert.deepEqual(
          hs.map((e) => e.resumed),
          verdicts.map((v) => v.verdict === 'Reused'),
        );
        assert.equal(hs[0].offered, 'none');
        assert.equal(hs[0].fullCause, 'nothing-offered');
        assert.ok(hs.slice(1).every((e) => e.offered === EXPECT[mode].offered && e.protocol === EXPECT[mode].protocol));
        const hashes = new Set(hs.slice(1).map((e) => e.offeredHash));
        assert.equal(hashes.size, EXPECT[mode].sameHash ? 1 : 4);
        assert.ok(hs[0].ticketsReceived >= 1);
        await checkAuditHasNoSecrets(h);
      } finally {
        await h.stop();
        await s.stop();
      }
    });
  }

  test('the audit line has every field the issue names', async () => {
    const s = await startSServer('tls13', cert);
    const h = await startTunnelService({
      name: 'smtps',
      upstream: { host: s.host, port: s.port, servername: 'localhost', ca: cert.certFile },
    });
    try {
      await verdictPlain(h.port);
      await verdictPlain(h.port);
      await h.stop();
      const lines = readFileSync(h.auditFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as HandshakeEvent);
      assert.equal(lines.length, 2);
      const [full, resumed] = lines;
      for (const e of lines) {
        assert.equal(e.event, 'tls.handshake');
        assert.ok(!Number.isNaN(Date.parse(e.time as string)));
        assert.equal(e.listener, 'smtps');
        assert.equal(e.destination, `127.0.0.1:${s.port}`);
        assert.equal(e.servername, 'localhost');
        assert.match(e.key, /^[0-9a-f]{12}$/);
        assert.equal(e.protocol, 'TLSv1.3');
        assert.match(e.cipher ?? '', /^TLS_/);
        assert.equal(typeof e.handshakeMs, 'number');
        assert.equal(typeof e.ticketsLeft, 'number');
      }
      assert.equal(full.key, resumed.key);
      assert.deepEqual([full.offered, full.resumed, full.ticketsReceived, full.ticketsLeft], ['none', false, 2, 2]);
      // s_server renews on resumption: one taken, one received.
      assert.deepEqual([resumed.offered, resumed.resumed, resumed.ticketsReceived, resumed.ticketsLeft], ['tls13-ticket', true, 1, 2]);
      assert.equal(resumed.offeredHash, full.receivedHashes[full.receivedHashes.length - 1], 'the newest ticket went first');
    } finally {
      await h.stop();
      await s.stop();
    }
  });

  test('an upstream certificate from another CA: the client gets nothing and the audit says why', async () => {
    const s = await startSServer('tls13', cert);
    const other = makeCert(['localhost']);
    const h = await startTunnelService({ upstream: { host: s.host, port: s.port, servername: 'localhost', ca: other.certFile } });
    try {
      const got = await exchange(h.port, 'GET / HTTP/1.0\r\n\r\n');
      assert.equal(got.length, 0, 'no byte from an unverified server reaches the client');
      const [e] = (await h.waitFor(isHandshake)) as HandshakeEvent[];
      assert.match(e.error ?? '', /self[- ]signed|certificate/i);
      assert.equal(e.resumed, false);
    } finally {
      await h.stop();
      await s.stop();
    }
  });

  test('verify: false is an explicit opt-out: the same server is then reached', async () => {
    const s = await startSServer('tls13', cert);
    const h = await startTunnelService({ upstream: { host: s.host, port: s.port, servername: 'localhost', verify: false } });
    try {
      assert.equal((await verdictPlain(h.port)).verdict, 'New');
      assert.equal((await verdictPlain(h.port)).verdict, 'Reused');
    } finally {
      await h.stop();
      await s.stop();
    }
  });

  test('bytes pass through unchanged both ways (1 MiB down, 1 MiB up)', async () => {
    const node = await startNodeTlsServer({ cert });
    const h = await startTunnelService({ upstream: { host: node.host, port: node.port, servername: 'localhost', ca: cert.certFile } });
    try {
      const down = await exchange(h.port, 'SEND 1048576\n');
      assert.equal(down.length, 1_048_576);
      const up = await exchange(h.port, Buffer.concat([Buffer.from('RECV 1048576\n'), Buffer.alloc(1_048_576, 0x62)]));
      assert.equal(up.toString(), 'OK\n');
      assert.equal(node.stats.handshakes, 2);
    } finally {
      await h.stop();
      await node.stop();
    }
  });

  test('a client that half-closes after its request still gets the whole reply', async () => {
    const node = await startNodeTlsServer({ cert });
    const h = await startTunnelService({ upstream: { host: node.host, port: node.port, servername: 'localhost', ca: cert.certFile } });
    try {
      const down = await exchange(h.port, 'SEND 1048576\n', { halfClose: true });
      assert.equal(down.length, 1_048_576);
      const page = (await exchange(h.port, 'GET / HTTP/1.0\r\n\r\n', { halfClose: true })).toString();
      assert.match(page, /^HTTP\/1\.0 200 ok\r\n\r\nReused, TLSv1\.3/);
    } finally {
      await h.stop();
      await node.stop();
    }
  });

  test('a client cut at the shutdown timeout takes its upstream connection with it', async () => {
    const node = await startNodeTlsServer({ cert });
    const h = await startTunnelService({ upstream: { host: node.host, port: node.port, servername: 'localhost', ca: cert.certFile } });
    try {
      const held = connect({ host: '127.0.0.1', port: h.port });
      held.on('error', () => undefined);
      await h.waitFor(isHandshake);
      assert.equal(node.stats.closed, 0);
      await h.stop(100); // the session does not finish: cut at the timeout
      await node.closedAtLeast(1); // the server sees its connection end, not left open
      held.destroy();
    } finally {
      await h.stop();
      await node.stop();
    }
  });

  test('allow list: a client outside it is refused, logged as client.refused, and never reaches the upstream', async () => {
    const node = await startNodeTlsServer({ cert });
    const h = await startTunnelService({
      allow: ['10.0.0.0/8'],
      upstream: { host: node.host, port: node.port, servername: 'localhost', ca: cert.certFile },
    });
    try {
      const got = await exchange(h.port, 'GET /\n');
      assert.equal(got.length, 0);
      const [e] = await h.waitFor((x) => x.event === 'client.refused');
      assert.deepEqual(
        { ...e, time: undefined, client: undefined },
        {
          event: 'client.refused',
          listener: 'tunnel',
          reason: 'allow-list',
          time: undefined,
          client: undefined,
        },
      );
      assert.match((e as { client: string }).client, /^127\.0\.0\.1:\d+$/);
      assert.equal(node.stats.handshakes, 0);
      assert.equal(h.handshakes().length, 0);
    } finally {
      await h.stop();
      await node.stop();
    }
  });
});

/**
 * No audit line may hold a ticket, a session or key material: only 12-hex hashes. The sessions
 * still in the cache are the ones the server issued on these connections.
 */
async function checkAuditHasNoSecrets(h: TunnelHarness): Promise<void> {
  const listener = h.service.config.listeners[0];
  assert.equal(listener.type, 'tunnel');
  if (listener.type !== 'tunnel') return;
  const key = keyOf(targetFromConfig(listener.upstream));
  const secrets: Buffer[] = [];
  // Through the policy (the only way to tickets), adaptive so that the last spent ticket comes out
  // once the fresh ones are gone: every fresh ticket, then the TLS 1.2 session or the spent ticket.
  const adaptive = h.service.cache.withOptions({ ...h.service.cache.options, reuse: 'adaptive' });
  for (;;) {
    const o = await adaptive.offer(key);
    if (o.session) secrets.push(o.session);
    if (o.kind !== 'tls13-ticket' || o.reoffered) break;
  }
  assert.ok(secrets.length > 0, 'sessions to look for');
  await h.stop();
  const log = readFileSync(h.auditFile, 'utf8');
  assert.ok(log.length > 0);
  for (const der of secrets) {
    const info = parseSession(der);
    const identity = info.ticket && info.ticket.length > 0 ? info.ticket : info.sessionId;
    for (const bytes of [der, identity, identity.subarray(0, 16)]) {
      for (const form of [
        bytes.toString('hex'),
        bytes.toString('hex').toUpperCase(),
        bytes.toString('base64'),
        bytes.toString('base64url'),
      ]) {
        assert.ok(!log.includes(form), 'a ticket or session appears in the audit log');
      }
    }
  }
  for (const line of log.trim().split('\n')) {
    const e = JSON.parse(line) as HandshakeEvent;
    for (const h of [e.offeredHash, ...e.receivedHashes].filter((x) => x !== undefined)) assert.match(h, /^[0-9a-f]{12}$/);
  }
}
