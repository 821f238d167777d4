import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import { configSchema } from '../../src/config/schema.js';
import { smtpListenerSchema } from '../../src/config/smtp-schema.js';
import { Router } from '../../src/smtp/routing.js';
import { skipOrFail } from '../support/interop.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost } from '../support/smarthost.js';

const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 2, dataDoneSeconds: 2 };

/** Whether this machine can listen on ::1 (containers without IPv6 loopback cannot). */
async function hasIpv6Loopback(): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

describe('smtp listener: address literals', () => {
  test('an [IPv6:...] literal routes to that address, whatever the case of its tag', async () => {
    const l = smtpListenerSchema.parse({
      name: 'sh',
      type: 'smtp',
      listen: '127.0.0.1:0',
      route: { mode: 'mx', port: 2525 },
      tls: { level: 'none' },
    });
    const config = configSchema.parse({
      listeners: [{ name: 'x', type: 'tunnel', listen: '127.0.0.1:0', upstream: { host: 'x.test', port: 1 } }],
    });
    const kv = { get: async () => undefined, set: async () => undefined };
    const router = new Router(l, { dns: config.dns, mtaSts: config.mtaSts, kv, audit: new AuditLog() });
    const route = router.routeFor('[ipv6:::1]');
    for (const domain of ['[ipv6:::1]', '[IPv6:::1]', '[IPV6:::1]']) {
      const r = await router.resolve(route, domain);
      assert.ok(r.ok, domain);
      assert.deepEqual(
        r.candidates.map((c) => `${c.connect}:${c.port}`),
        ['::1:2525'],
        domain,
      );
    }
  });

  test('RCPT TO:<u@[IPv6:::1]> is delivered to the next hop on ::1', async (t) => {
    if (!(await hasIpv6Loopback())) return skipOrFail(t, 'no IPv6 loopback on this machine (the routing itself is tested above)');
    const hop = await startFaultServer({ host: '::1' });
    const sh = await startSmarthost({ route: { mode: 'mx', port: hop.port }, tls: { level: 'none' }, timeouts });
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      const sent = await sendMessage(d, 'a@client.test', ['u@[IPv6:::1]'], message('ipv6-literal'));
      d.close();
      assert.equal(sent.replies[1].code, 250, sent.replies[1].raw);
      assert.equal(sent.final.code, 250);
      assert.equal(hop.stored.length, 1);
      assert.deepEqual(hop.stored[0].to, ['<u@[IPv6:::1]>']);
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});

describe('smtp listener: out-of-protocol upstream replies', () => {
  const cases: Array<['data-250' | 'dot-354', string]> = [
    ['data-250', 'DATA answered 250'],
    ['dot-354', 'the final dot answered 354'],
  ];
  for (const [fault, what] of cases) {
    test(`${what}: the client gets 451 4.5.0, the upstream connection is dropped, the retry is stored once`, async () => {
      const hop = await startFaultServer({ fault });
      const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts });
      try {
        const d = await dial(sh.port);
        await d.cmd('EHLO client.test');
        const sent = await sendMessage(d, 'a@client.test', ['b@dest.test'], message(fault));
        assert.match(sent.final.raw, /^451 4\.5\.0/, sent.final.raw);
        assert.equal(sent.replies.filter((r) => r.code === 354).length, fault === 'dot-354' ? 1 : 0, 'only our own 354 reaches the client');
        await hop.closedConnections(1); // the session with the unknown state is not kept
        assert.equal(hop.stored.length, 0);
        const [tx] = await sh.waitForTransactions(1);
        assert.equal(tx.code, 451);
        assert.match(tx.error!, /answered/);

        hop.fault = 'none';
        const again = await sendMessage(d, 'a@client.test', ['b@dest.test'], message(fault));
        assert.equal(again.final.code, 250);
        assert.equal(hop.stored.length, 1);
        assert.equal(hop.connections, 2, 'a fresh connection for the retry');
        d.close();
      } finally {
        await sh.stop();
        await hop.stop();
      }
    });
  }
});

describe('smtp listener: upstream connections are never leaked', () => {
  test('MAIL refused by a next hop that is out of step: the client gets the refusal, the upstream is closed at once', async () => {
    const hop = await startFaultServer({ fault: 'mail-refused-twice' });
    const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts });
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      assert.equal((await d.cmd('MAIL FROM:<a@client.test>')).code, 250);
      assert.match((await d.cmd('RCPT TO:<b@dest.test>')).raw, /^550 5\.7\.1/);
      // The client session is still open: only closing the out-of-step upstream ends this connection.
      const closed = await Promise.race([
        hop.closedConnections(1).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000).unref()),
      ]);
      assert.ok(closed, 'the upstream connection was closed while the client stayed connected');
      assert.equal((await d.cmd('RSET')).code, 250);
      d.close();
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});

describe('smtp listener: a client that half-closes', () => {
  test('a whole pipelined transaction, QUIT, then FIN: the client still gets the 250 for its message and the 221', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts });
    try {
      const socket = connect({ host: '127.0.0.1', port: sh.port });
      socket.on('error', () => undefined);
      let received = '';
      socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const body = message('half-close').replace(/^\./gm, '..');
      socket.end(`EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.test>\r\nDATA\r\n${body}.\r\nQUIT\r\n`);
      await closed;
      const codes = received
        .split('\r\n')
        .filter((l) => /^\d{3} /.test(l))
        .map((l) => l.slice(0, 3));
      assert.deepEqual(codes, ['220', '250', '250', '250', '354', '250', '221'], received);
      assert.match(received, /250 2\.0\.0 Ok: queued as Q1\r\n221 /);
      assert.equal(hop.stored.length, 1);
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});

describe('smtp listener: abandoned transactions', () => {
  test('MAIL, RCPT, RSET is marked abandoned in the audit line and counted as result="abandoned", not 2xx', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost(
      { route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts },
      { admin: { listen: '127.0.0.1:0' } },
    );
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      assert.equal((await d.cmd('MAIL FROM:<>')).code, 250);
      assert.equal((await d.cmd('RCPT TO:<probe@dest.test>')).code, 250);
      assert.equal((await d.cmd('RSET')).code, 250);
      const sent = await sendMessage(d, 'a@client.test', ['b@dest.test'], message('after-probe'));
      assert.equal(sent.final.code, 250);
      d.close();
      const [probe, delivered] = await sh.waitForTransactions(2);
      assert.equal(probe.code, 250);
      assert.equal(probe.abandoned, true);
      assert.equal(delivered.abandoned, undefined);
      assert.equal(hop.stored.length, 1);

      const text = await (await fetch(`http://127.0.0.1:${sh.service.admin!.address().port}/metrics`)).text();
      const count = (result: string): number | undefined =>
        Number(new RegExp(`^ticketbooth_smtp_transactions_total\\{[^}]*result="${result}"[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      assert.equal(count('abandoned'), 1, text);
      assert.equal(count('2xx'), 1);
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});
