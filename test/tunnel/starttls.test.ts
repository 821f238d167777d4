import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { before, describe, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { ReplyReader, type SmtpReply } from '../../src/upstream/smtp-client/reply-reader.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startSmtpServer, type SmtpServerOptions, type SmtpTestServer } from '../support/servers.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../support/tunnel-service.js';

/**
 * SMTP STARTTLS tunnels against a real (small, Node) SMTP server: ticketbooth does EHLO and
 * STARTTLS itself, the client sees the server's greeting and speaks EHLO inside TLS. Anything
 * wrong before the relay gives the client `421 4.7.0`, never a cleartext session.
 */

const HELO = 'relay.ticketbooth.test';

async function withTunnel(
  cert: CertPair,
  server: Omit<SmtpServerOptions, 'cert'>,
  body: (h: TunnelHarness, s: SmtpTestServer) => Promise<void>,
  ca = cert.certFile,
): Promise<void> {
  const s = await startSmtpServer({ cert, ...server });
  const h = await startTunnelService({
    upstream: { host: s.host, port: s.port, starttls: 'smtp', servername: 'localhost', ca, heloName: HELO },
  });
  try {
    await body(h, s);
  } finally {
    await h.stop();
    await s.stop();
  }
}

/** A cleartext SMTP client, as a legacy client would be. */
class Client {
  private constructor(
    private readonly socket: Socket,
    private readonly reader: ReplyReader,
    readonly closed: Promise<void>,
  ) {}

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.once('error', reject);
      socket.once('connect', () => resolve(new Client(socket, new ReplyReader(socket), closed)));
    });
  }

  read(): Promise<SmtpReply> {
    return this.reader.read(10_000);
  }

  async send(line: string): Promise<SmtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.read();
  }

  /** Everything after the last reply, once the server side has closed. */
  async rest(): Promise<number> {
    await this.closed;
    return this.reader.pending;
  }
}

describe('SMTP STARTTLS tunnel', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  test('the client sees the server banner, its EHLO goes inside TLS, mail goes through, the next session resumes', async () => {
    await withTunnel(cert, { name: 'mx1.test' }, async (h, s) => {
      for (let i = 0; i < 2; i++) {
        const c = await Client.open(h.port);
        const greeting = await c.read();
        assert.equal(greeting.raw, s.greeting, 'the server greeting, unchanged');
        const ehlo = await c.send('EHLO legacy.client');
        assert.equal(ehlo.code, 250);
        assert.equal(ehlo.lines[0], 'mx1.test greets you');
        assert.ok(!ehlo.lines.includes('STARTTLS'), 'inside TLS, STARTTLS is no longer offered');
        assert.equal((await c.send('MAIL FROM:<a@client.test>')).code, 250);
        assert.equal((await c.send('RCPT TO:<b@dest.test>')).code, 250);
        assert.equal((await c.send('DATA')).code, 354);
        assert.equal((await c.send('Subject: hi\r\n\r\nhello\r\n.')).code, 250);
        assert.equal((await c.send('QUIT')).code, 221);
        await c.closed;
      }
      assert.equal(s.stats.messages, 2);
      assert.equal(s.stats.tlsSessions, 2);
      assert.equal(s.stats.resumed, 1, 'the server resumed the second session');
      // In cleartext the server only ever saw ticketbooth's EHLO and STARTTLS.
      const clear = s.stats.commands.filter((c) => !c.tls).map((c) => c.line);
      assert.deepEqual(clear, [`EHLO ${HELO}`, 'STARTTLS', `EHLO ${HELO}`, 'STARTTLS']);
      assert.ok(s.stats.commands.filter((c) => c.tls).some((c) => c.line === 'EHLO legacy.client'));
      const hs = (await h.waitFor(isHandshake, 2)) as HandshakeEvent[];
      assert.deepEqual(
        hs.map((e) => [e.ehloName, e.resumed]),
        [
          ['mx1.test', false],
          ['mx1.test', true],
        ],
      );
    });
  });

  test('no STARTTLS offered: the client gets 421 4.7.0 and no cleartext session', async () => {
    await withTunnel(cert, { starttls: false }, async (h, s) => {
      const c = await Client.open(h.port);
      const reply = await c.read();
      assert.equal(reply.code, 421);
      assert.match(reply.lines[0], /^4\.7\.0 .*STARTTLS/);
      assert.equal(await c.rest(), 0, 'nothing after the 421');
      assert.equal(s.stats.tlsSessions, 0);
      assert.deepEqual(
        s.stats.commands.map((x) => x.line),
        [`EHLO ${HELO}`],
      );
    });
  });

  test('bytes after the 220 to STARTTLS (response injection): 421, and nothing is relayed', async () => {
    const injected = '250-mx.evil.test\r\n250 AUTH PLAIN\r\n';
    await withTunnel(cert, { injectAfterStarttls: injected }, async (h, s) => {
      const c = await Client.open(h.port);
      const reply = await c.read();
      assert.equal(reply.code, 421);
      assert.match(reply.raw, /^421 4\.7\.0 .*injection/);
      assert.ok(!reply.raw.includes('mx.evil.test'), 'the injected bytes never reach the client');
      assert.equal(await c.rest(), 0);
      assert.equal(s.stats.tlsSessions, 0, 'no TLS session was set up on a poisoned connection');
      assert.equal(s.stats.messages, 0);
    });
  });

  test('a certificate that does not verify: 421 4.7.0 with the reason, the audit line has the error', async () => {
    const other = makeCert(['localhost']);
    await withTunnel(
      cert,
      {},
      async (h, s) => {
        const c = await Client.open(h.port);
        const reply = await c.read();
        assert.equal(reply.code, 421);
        assert.match(reply.raw, /^421 4\.7\.0 .*(certificate|self[- ]signed)/i);
        assert.equal(await c.rest(), 0);
        assert.equal(s.stats.commands.filter((x) => x.tls).length, 0, 'no client command reached the server');
        const [e] = (await h.waitFor(isHandshake)) as HandshakeEvent[];
        assert.ok(e.error);
        assert.equal(e.ehloName, 'mx.test');
      },
      other.certFile,
    );
  });

  test('an unreachable upstream: 421 4.7.0', async () => {
    const s = await startSmtpServer({ cert });
    const port = s.port;
    await s.stop(); // nobody listens there now
    const h = await startTunnelService({
      upstream: { host: '127.0.0.1', port, starttls: 'smtp', servername: 'localhost', ca: cert.certFile },
    });
    try {
      const c = await Client.open(h.port);
      const reply = await c.read();
      assert.equal(reply.code, 421);
      assert.match(reply.raw, /^421 4\.7\.0 /);
    } finally {
      await h.stop();
    }
  });
});
