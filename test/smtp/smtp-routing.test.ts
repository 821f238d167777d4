import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeCert, type CertPair } from '../support/certs.js';
import { policyFor, tlsTargetFor } from '../../src/smtp/tls-policy.js';
import { keyOf } from '../../src/upstream/tls-target.js';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.js';
import { missing } from '../support/interop.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

/**
 * Mode mx against a real resolver (dnsmasq). MX records carry no port, so every MX host here
 * listens on the route's port on its own 127/8 address.
 */
describe('smtp listener: MX routing through dnsmasq', { skip: missing('dnsmasq') }, () => {
  let dns: Dnsmasq;
  let good: FaultServer;
  let direct: FaultServer;
  let relayHop: FaultServer;
  let stalled: FaultServer;
  let subdomainCert: CertPair;
  let underNextHop: FaultServer;
  let sh: Smarthost;
  let cert: CertPair;
  let deadAddress: string;

  before(async () => {
    cert = makeCert(['mx2.dest.test', 'dest.test']);
    good = await startFaultServer({ host: '127.0.0.1', cert, starttls: true, name: 'mx2.dest.test' });
    const port = good.port;
    deadAddress = await freeLoopbackAddress(port);
    const directAddress = await freeLoopbackAddress(port);
    direct = await startFaultServer({ host: directAddress, port, name: 'amx.test' });
    relayHop = await startFaultServer({ name: 'relay.hop.test' });
    const stalledAddress = await freeLoopbackAddress(port);
    stalled = await startFaultServer({ host: stalledAddress, port, fault: 'stall-greeting', name: 'mx1.stall.test' });
    subdomainCert = makeCert(['mx1.example.test']);
    const underAddress = await freeLoopbackAddress(port);
    underNextHop = await startFaultServer({ host: underAddress, port, cert: subdomainCert, starttls: true, name: 'mx1.example.test' });
    dns = await startDnsmasq({
      mx: [
        'dest.test,mx1.dest.test,10',
        'dest.test,mx2.dest.test,20',
        'stall.test,mx1.stall.test,10',
        'stall.test,mx2.dest.test,20',
        'slow.test,mx1.stall.test,10',
        'slow.test,mx2.stall.test,20',
        'slow.test,mx2.dest.test,30',
        'example.test,mx1.example.test,10',
      ],
      hosts: [
        `mx1.dest.test,${deadAddress}`,
        'mx2.dest.test,127.0.0.1',
        `amx.test,${directAddress}`,
        `secure.test,127.0.0.1`,
        `mx1.stall.test,${stalledAddress}`,
        `mx2.stall.test,${stalledAddress}`,
        `mx1.example.test,${underAddress}`,
        `other.test,${underAddress}`,
      ],
      rawRecords: ['null.test,15,000000'],
    });
    sh = await startSmarthost(
      {
        route: { mode: 'mx', port },
        tls: { level: 'may' },
        timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 2, dataDoneSeconds: 2 },
        transport: {
          'routed.test': { mode: 'relay', host: '127.0.0.1', port: relayHop.port, tls: { level: 'none' } },
          '.sub.test': { mode: 'relay', host: '127.0.0.1', port: relayHop.port, tls: { level: 'none' } },
        },
        logAddresses: 'domain',
      },
      { dns: { servers: [dns.server] } },
    );
  });
  after(async () => {
    await sh?.stop();
    await dns?.stop();
    for (const s of [good, direct, relayHop, stalled, underNextHop]) await s?.stop();
  });

  async function deliver(rcpt: string, id: string): Promise<{ rcpt: string; final: number }> {
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    const r = await sendMessage(d, 'a@client.test', [rcpt], message(id));
    d.close();
    return { rcpt: r.replies[1].raw, final: r.final.code };
  }

  test('MX hosts in preference order: the first refuses, the second takes it over STARTTLS', async () => {
    const r = await deliver('user@dest.test', 'mx-order');
    assert.equal(r.final, 250);
    assert.equal(good.stored.length, 1);
    assert.equal(good.stored[0].tls, true);
    const tx = sh.transactions().at(-1)!;
    assert.match(tx.nextHop!, /^mx2\.dest\.test\[127\.0\.0\.1\]/);
    assert.deepEqual([tx.from, tx.to], ['client.test', ['dest.test']], 'domains only, as configured');
  });

  test('null MX (RFC 7505): 556 5.1.10', async () => {
    const r = await deliver('user@null.test', 'null-mx');
    assert.match(r.rcpt, /^556 5\.1\.10/);
  });

  test('no MX: the address record is the implicit MX', async () => {
    const r = await deliver('user@amx.test', 'implicit-mx');
    assert.equal(r.final, 250);
    assert.equal(direct.stored.length, 1);
  });

  test('a domain that does not exist: 550 5.1.2', async () => {
    const r = await deliver('user@nowhere.test', 'nxdomain');
    assert.match(r.rcpt, /^550 5\.1\.2/);
  });

  test('the transport table overrides MX routing (exact domain and .subdomain entries)', async () => {
    assert.equal((await deliver('user@routed.test', 'transport')).final, 250);
    assert.equal((await deliver('user@a.sub.test', 'transport-sub')).final, 250);
    assert.equal(relayHop.stored.length, 2);
  });

  /** A smarthost whose upstream replies may take 10 s, but one host's setup only 1 s. */
  async function boundedSetup(rcptBudgetSeconds: number): Promise<Smarthost> {
    return startSmarthost(
      {
        route: { mode: 'mx', port: good.port },
        tls: { level: 'may' },
        timeouts: {
          idleSeconds: 10,
          dataSeconds: 5,
          connectSeconds: 1,
          replySeconds: 10,
          dataDoneSeconds: 5,
          setupSeconds: 1,
          rcptBudgetSeconds,
        },
      },
      { dns: { servers: [dns.server] } },
    );
  }

  test('a first MX that stalls its greeting costs setupSeconds, not replySeconds: the backup MX delivers', async () => {
    const s = await boundedSetup(8);
    try {
      const before = good.stored.length;
      const d = await dial(s.port);
      await d.cmd('EHLO client.test');
      assert.equal((await d.cmd('MAIL FROM:<a@client.test>')).code, 250);
      // The legacy client's own RCPT timeout (Postfix smtp_rcpt_timeout, scaled down): 4 s < replySeconds.
      d.write('RCPT TO:<user@stall.test>\r\n');
      assert.equal((await d.read(4000)).code, 250);
      const r = await d.cmd('DATA');
      assert.equal(r.code, 354);
      d.write(message('stalled-mx1').replace(/^\./gm, '..') + '.\r\n');
      assert.equal((await d.read(5000)).code, 250);
      d.close();
      assert.equal(good.stored.length, before + 1, 'delivered once, via MX2');
      assert.ok(stalled.connections >= 1, 'MX1 was tried first');
      const [tx] = await s.waitForTransactions(1);
      assert.match(tx.nextHop!, /^mx2\.dest\.test\[127\.0\.0\.1\]/);
    } finally {
      await s.stop();
    }
  });

  test('the RCPT budget ends the MX walk: 451 4.4.1 before the client would time out, the third MX never dialed', async () => {
    const s = await boundedSetup(1.5);
    try {
      const goodBefore = good.connections;
      const stalledBefore = stalled.connections;
      const d = await dial(s.port);
      await d.cmd('EHLO client.test');
      assert.equal((await d.cmd('MAIL FROM:<a@client.test>')).code, 250);
      d.write('RCPT TO:<user@slow.test>\r\n');
      assert.match((await d.read(4000)).raw, /^451 4\.4\.1/);
      assert.equal(stalled.connections - stalledBefore, 2, 'MX1 for 1 s, MX2 for the 0.5 s left');
      assert.equal(good.connections, goodBefore, 'MX3 is not tried once the budget is spent');
      d.close();
    } finally {
      await s.stop();
    }
  });

  test('secure checks the next-hop domain, verify the MX host name', async () => {
    // mx2.dest.test's certificate names mx2.dest.test and dest.test: both pass.
    for (const level of ['verify', 'secure']) {
      const s = await startSmarthost(
        {
          route: { mode: 'mx', port: good.port },
          tls: { level, ca: cert.certFile },
          timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 2, dataDoneSeconds: 2 },
        },
        { dns: { servers: [dns.server] } },
      );
      const d = await dial(s.port);
      await d.cmd('EHLO client.test');
      const r = await sendMessage(d, 'a@client.test', ['user@dest.test'], message(level));
      assert.equal(r.final.code, 250, level);
      d.close();
      await s.stop();
    }
    // secure.test's MX is itself (address record) with a certificate that does not name secure.test.
    const s = await startSmarthost(
      {
        route: { mode: 'mx', port: good.port },
        tls: { level: 'secure', ca: cert.certFile },
        timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 2, dataDoneSeconds: 2 },
      },
      { dns: { servers: [dns.server] } },
    );
    const d = await dial(s.port);
    await d.cmd('EHLO client.test');
    await d.cmd('MAIL FROM:<a@client.test>');
    assert.match((await d.cmd('RCPT TO:<user@secure.test>')).raw, /^451 4\.7\.5/);
    d.close();
    await s.stop();
  });

  test('secure takes a certificate for a name under the next-hop domain (Postfix dot-nexthop), not one elsewhere', async () => {
    const s = await startSmarthost(
      {
        route: { mode: 'mx', port: good.port },
        tls: { level: 'secure', ca: subdomainCert.certFile },
        timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 2, dataDoneSeconds: 2 },
      },
      { dns: { servers: [dns.server] } },
    );
    try {
      const d = await dial(s.port);
      await d.cmd('EHLO client.test');
      // example.test's MX presents mx1.example.test: under the next hop, accepted.
      const r = await sendMessage(d, 'a@client.test', ['user@example.test'], message('dot-nexthop'));
      assert.equal(r.final.code, 250, r.final.raw);
      assert.equal(underNextHop.stored.length, 1);
      assert.equal(underNextHop.stored[0].tls, true);
      // other.test's (implicit) MX is the same host: mx1.example.test is not under other.test.
      await d.cmd('MAIL FROM:<a@client.test>');
      assert.match((await d.cmd('RCPT TO:<user@other.test>')).raw, /^451 4\.7\.5/);
      assert.equal(underNextHop.stored.length, 1);
      d.close();
    } finally {
      await s.stop();
    }
    // The match rule is part of the trust decision: a session made under dot-nexthop is never offered under exact.
    const hop = { connect: '127.0.0.1', port: 25, hostName: 'mx1.example.test', nextHop: 'example.test' };
    const mx = tlsTargetFor(
      policyFor('mx', { level: 'secure' }, undefined, () => ''),
      'secure',
      hop,
      'mx1.example.test',
    )!;
    const relay = tlsTargetFor(
      policyFor('relay', { level: 'secure' }, undefined, () => ''),
      'secure',
      hop,
      'mx1.example.test',
    )!;
    assert.equal(mx.verifyMatch, 'dot-nexthop');
    assert.equal(relay.verifyMatch, undefined);
    assert.notEqual(keyOf(mx).id, keyOf(relay).id);
  });
});
