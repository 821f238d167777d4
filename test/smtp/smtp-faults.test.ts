import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { makeCert, type CertPair } from '../support/certs.js';
import { freeTcpPort } from '../support/ports.js';
import { dial, message, sendMessage, type SentMessage } from '../support/smtp-client.js';
import { startFaultServer, type Fault } from '../support/smtp-fault-server.js';
import { startSmarthost } from '../support/smarthost.js';

// Long enough that a next hop that answers is never timed out on a loaded machine; the stall cases wait them out.
const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 1.5, dataDoneSeconds: 1.5 };

/** One message through a smarthost relaying to `port` under `tls`; what the client got. */
async function relayOnce(
  port: number,
  id: string,
  tls: Record<string, unknown> = { level: 'none' },
  extra: Record<string, unknown> = {},
): Promise<SentMessage & { events: unknown[] }> {
  const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port, ...extra }, tls, timeouts });
  try {
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    const sent = await sendMessage(d, 'a@client.test', ['b@dest.test'], message(id));
    d.close();
    await sh.waitForTransactions(1);
    return { ...sent, events: sh.events };
  } finally {
    await sh.stop();
  }
}

/**
 * Every upstream failure is a 4xx to the client (it keeps the mail), and the next hop never
 * stores a message the client was not told 250 for. Each case then retries against a healthy
 * next hop: stored exactly once.
 */
describe('smtp listener: upstream fault matrix', () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['127.0.0.1', 'localhost']);
  });

  test('the next hop refuses the connection: 451 4.4.1 at RCPT; delivered once when it is back', async () => {
    const port = await freeTcpPort();
    const r = await relayOnce(port, 'refused');
    const rcpt = r.replies[1];
    assert.match(rcpt.raw, /^451 4\.4\.1/);
    const hop = await startFaultServer({ host: '127.0.0.1' });
    try {
      const again = await relayOnce(hop.port, 'refused');
      assert.equal(again.final.code, 250);
      assert.equal(hop.stored.length, 1);
    } finally {
      await hop.stop();
    }
  });

  const drops: Array<[Fault, number, RegExp]> = [
    ['drop-after-mail', 1, /^451 4\.4\.2/],
    ['drop-after-rcpt', 1, /^451 4\.4\.2/],
    ['drop-in-data', -1, /^451 4\.4\.2/],
    ['drop-after-dot', -1, /^451 4\.4\.2/],
    ['stall-after-dot', -1, /^451 4\.4\.2/],
    ['stall-greeting', 1, /^451 4\.4\.2/],
  ];
  for (const [fault, at, expected] of drops) {
    test(`${fault}: the client gets 4xx, nothing is stored; the retry is stored exactly once`, async () => {
      const hop = await startFaultServer({ fault });
      try {
        const big = fault === 'drop-in-data' ? 'x'.repeat(300) + '\r\n' : '';
        const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts });
        const d = await dial(sh.port);
        await d.cmd('EHLO client.test');
        const sent = await sendMessage(d, 'a@client.test', ['b@dest.test'], message(fault, big));
        const failed = at >= 0 ? sent.replies[at] : sent.final;
        assert.match(failed.raw, expected, `${fault}: ${failed.raw}`);
        assert.ok(!sent.replies.some((x, i) => i > 1 && x.code === 250), 'no 250 for the message');
        assert.equal(hop.stored.length, 0);
        // A transaction whose recipients all failed stays open until RSET (RFC 5321 4.1.1.5).
        assert.equal((await d.cmd('RSET')).code, 250);
        const [tx] = await sh.waitForTransactions(1);
        assert.equal(tx.code, failed.code);
        assert.ok(tx.error, 'the audit line says why');

        // The client's queue still holds it: the same message again, the next hop healthy now.
        hop.fault = 'none';
        const again = await sendMessage(d, 'a@client.test', ['b@dest.test'], message(fault, big));
        assert.equal(again.final.code, 250);
        assert.equal(hop.stored.length, 1);
        d.close();
        await sh.stop();
      } finally {
        await hop.stop();
      }
    });
  }

  test('encrypt, next hop without STARTTLS: 451 4.7.4, and no envelope ever went out in cleartext', async () => {
    const hop = await startFaultServer({ cert, starttls: false });
    try {
      const r = await relayOnce(hop.port, 'no-starttls', { level: 'encrypt' });
      assert.match(r.replies[1].raw, /^451 4\.7\.4/);
      assert.ok(!hop.commands.some((c) => /^(MAIL|RCPT|DATA)/.test(c.line)), JSON.stringify(hop.commands));
      assert.equal(hop.stored.length, 0);
    } finally {
      await hop.stop();
    }
  });

  test('verify, certificate for another name: 451 4.7.5, no envelope sent, the failed handshake is audited', async () => {
    const other = makeCert(['wrong.example']);
    const hop = await startFaultServer({ cert: other, starttls: true });
    try {
      const r = await relayOnce(hop.port, 'wrong-cert', { level: 'verify', ca: other.certFile });
      assert.match(r.replies[1].raw, /^451 4\.7\.5/);
      assert.ok(!hop.commands.some((c) => /^(MAIL|RCPT|DATA)/.test(c.line)));
      assert.ok(
        r.events.some((e) => (e as { event: string; error?: string }).event === 'tls.handshake' && (e as { error?: string }).error),
      );
      assert.equal(hop.stored.length, 0);
    } finally {
      await hop.stop();
    }
  });

  test('verify with the right CA and name: delivered inside TLS, envelope only after STARTTLS', async () => {
    const hop = await startFaultServer({ cert, starttls: true });
    try {
      const r = await relayOnce(hop.port, 'verified', { level: 'verify', ca: cert.certFile });
      assert.equal(r.final.code, 250);
      assert.equal(hop.stored.length, 1);
      assert.equal(hop.stored[0].tls, true);
      assert.ok(hop.commands.filter((c) => /^(MAIL|RCPT|DATA)/.test(c.line)).every((c) => c.tls));
    } finally {
      await hop.stop();
    }
  });

  test('may, TLS handshake fails: retried in cleartext on a new connection, as Postfix does', async () => {
    const hop = await startFaultServer({ cert, starttls: true, minVersion: 'TLSv1.3' });
    try {
      const r = await relayOnce(hop.port, 'may-fallback', { level: 'may', maxVersion: 'TLSv1.2' });
      assert.equal(r.final.code, 250);
      assert.equal(hop.stored.length, 1);
      assert.equal(hop.stored[0].tls, false);
      assert.equal(hop.connections, 2);
    } finally {
      await hop.stop();
    }
  });

  test('encrypt, TLS handshake fails: no cleartext retry', async () => {
    const hop = await startFaultServer({ cert, starttls: true, minVersion: 'TLSv1.3' });
    try {
      const r = await relayOnce(hop.port, 'encrypt-fail', { level: 'encrypt', maxVersion: 'TLSv1.2' });
      assert.match(r.replies[1].raw, /^451 4\.7\.5/);
      assert.equal(hop.connections, 1);
      assert.equal(hop.stored.length, 0);
    } finally {
      await hop.stop();
    }
  });

  test('STARTTLS response injection: bytes after the 220 fail the host (451 4.7.5 under encrypt)', async () => {
    // A hand-rolled next hop that pipelines a fake reply behind its 220 to STARTTLS.
    const { createServer } = await import('node:net');
    const server = createServer((s) => {
      s.write('220 inj.test ESMTP\r\n');
      s.on('data', (d: Buffer) => {
        const l = d.toString();
        if (l.startsWith('EHLO')) s.write('250-inj.test\r\n250 STARTTLS\r\n');
        else if (l.startsWith('STARTTLS')) s.write('220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n');
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await relayOnce((server.address() as { port: number }).port, 'inject', { level: 'encrypt' });
      assert.match(r.replies[1].raw, /^451 4\.7\.5/);
    } finally {
      server.close();
    }
  });

  test('AUTH inside TLS with a password from a file; never in cleartext; never in the audit log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-auth-'));
    const passwordFile = join(dir, 'pw');
    writeFileSync(passwordFile, 's3cret-Pa55\n', { mode: 0o600 });
    const hop = await startFaultServer({ cert, starttls: true, auth: { username: 'legacy', password: 's3cret-Pa55' } });
    try {
      const r = await relayOnce(hop.port, 'auth', { level: 'encrypt' }, { auth: { username: 'legacy', passwordFile } });
      assert.equal(r.final.code, 250);
      assert.equal(hop.stored.length, 1);
      const auth = hop.commands.filter((c) => c.line.startsWith('AUTH'));
      assert.ok(auth.length > 0 && auth.every((c) => c.tls));
      assert.ok(!JSON.stringify(r.events).includes('s3cret'));
      assert.ok(!JSON.stringify(r.events).includes(Buffer.from('\0legacy\0s3cret-Pa55').toString('base64')));
    } finally {
      await hop.stop();
    }
    const plain = await startFaultServer({ starttls: false, auth: { username: 'legacy', password: 's3cret-Pa55' } });
    try {
      const r = await relayOnce(plain.port, 'auth-cleartext', { level: 'may' }, { auth: { username: 'legacy', passwordFile } });
      assert.match(r.replies[1].raw, /^451 4\.7\.0/);
      assert.ok(!plain.commands.some((c) => c.line.startsWith('AUTH')));
    } finally {
      await plain.stop();
    }
  });

  test('extensions the next hop lacks: 8BITMIME 554 5.6.3, SMTPUTF8 553 5.6.7, SIZE 552 5.3.4; nothing altered or sent', async () => {
    const hop = await startFaultServer({ extensions: ['PIPELINING', 'SIZE 1000'] });
    const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts });
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      const cases: Array<[string, string, RegExp]> = [
        [' BODY=8BITMIME', 'b@dest.test', /^554 5\.6\.3/],
        [' SMTPUTF8', 'b@dest.test', /^553 5\.6\.7/],
        [' SIZE=5000', 'b@dest.test', /^552 5\.3\.4/],
      ];
      for (const [params, rcpt, expected] of cases) {
        assert.equal((await d.cmd(`MAIL FROM:<a@client.test>${params}`)).code, 250);
        assert.match((await d.cmd(`RCPT TO:<${rcpt}>`)).raw, expected, params);
        assert.equal((await d.cmd('RSET')).code, 250);
      }
      assert.ok(!hop.commands.some((c) => /^(MAIL|RCPT)/.test(c.line)));
      d.close();
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});
