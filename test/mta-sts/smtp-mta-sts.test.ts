import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SmtpTransactionEvent, StsPolicyEvent } from '../../src/audit/events.js';
import { makeCert, makeIssuedCert, type CertPair } from '../support/certs.js';
import { dnssecMissing, startDnssec, type DnssecDns, type ZoneSpec } from '../support/dnssec.js';
import { startConnectProxy } from '../support/connect-proxy.js';
import { startPolicyServer, type PolicyServer } from '../support/policy-server.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

const ENFORCE = (mx: string[], mode = 'enforce'): string =>
  `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: 86400\r\n`;

/**
 * MTA-STS (RFC 8461) end to end: the TXT records and MX hosts come from nsd through unbound (an
 * unsigned zone: MTA-STS needs no DNSSEC), the policies from a real HTTPS policy host on port 443
 * of a loopback address, with a certificate from a test CA that ticketbooth trusts for policy
 * fetches (`mtaSts.ca`) and for verifying MX hosts (the route's `tls.ca`). Each MX host records
 * what it was sent and whether inside TLS.
 */
describe('smtp listener: MTA-STS policies', { skip: dnssecMissing() }, () => {
  let dns: DnssecDns;
  let web: PolicyServer;
  let sh: Smarthost;
  let port: number;
  let caFile: string;
  const mx: Record<string, FaultServer> = {};
  let zone: (ids: Record<string, string>) => ZoneSpec;
  const ids: Record<string, string> = { enf: '1', skip: '1', none: '1', badcert: '1', testing: '1', wild: '1', nocache: '1' };

  before(async () => {
    const good = makeIssuedCert([
      'mx1.enf.sts.test',
      'rogue.sts.test',
      'a.b.wild.sts.test',
      'c.wild.sts.test',
      ...Object.keys(ids).map((d) => `mta-sts.${d}.sts.test`),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'tb-sts-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, good.ca);
    const bad: CertPair = makeCert(['mxbad.sts.test']);
    mx.enf = await startFaultServer({ host: '127.0.0.1', cert: good, starttls: true, name: 'mx1.enf.sts.test' });
    port = mx.enf.port;
    const at = async (name: string, cert: CertPair): Promise<FaultServer> =>
      startFaultServer({ host: await freeLoopbackAddress(port), port, cert, starttls: true, name });
    mx.rogue = await at('rogue.sts.test', good);
    mx.bad = await at('mxbad.sts.test', bad);
    mx.deep = await at('a.b.wild.sts.test', good);
    mx.wild = await at('c.wild.sts.test', good);
    web = await startPolicyServer(await freeLoopbackAddress(443), good);
    web.policies.set('enf.sts.test', ENFORCE(['mx1.enf.sts.test']));
    web.policies.set('skip.sts.test', ENFORCE(['mx1.enf.sts.test']));
    web.policies.set('none.sts.test', ENFORCE(['mx1.enf.sts.test']));
    web.policies.set('badcert.sts.test', ENFORCE(['mxbad.sts.test']));
    web.policies.set('testing.sts.test', ENFORCE(['mxbad.sts.test'], 'testing'));
    web.policies.set('wild.sts.test', ENFORCE(['*.wild.sts.test']));
    web.policies.set('nocache.sts.test', ENFORCE(['nowhere.sts.test']));
    web.down.add('nocache.sts.test');
    zone = (v) => ({
      origin: 'sts.test',
      security: 'unsigned',
      records: [
        `mx1.enf 60 IN A ${mx.enf.host}`,
        `rogue 60 IN A ${mx.rogue.host}`,
        `mxbad 60 IN A ${mx.bad.host}`,
        `a.b.wild 60 IN A ${mx.deep.host}`,
        `c.wild 60 IN A ${mx.wild.host}`,
        'enf 60 IN MX 10 mx1.enf',
        'skip 60 IN MX 10 rogue',
        'skip 60 IN MX 20 mx1.enf',
        'none 60 IN MX 10 rogue',
        'badcert 60 IN MX 10 mxbad',
        'testing 60 IN MX 10 mxbad',
        'wild 60 IN MX 10 a.b.wild',
        'wild 60 IN MX 20 c.wild',
        'nocache 60 IN MX 10 mx1.enf',
        ...Object.entries(v).flatMap(([d, id]) => [`_mta-sts.${d} 1 IN TXT "v=STSv1; id=${id}"`, `mta-sts.${d} 60 IN A ${web.address}`]),
      ],
    });
    dns = await startDnssec([zone(ids)]);
    sh = await startSmarthost(
      {
        route: { mode: 'mx', port },
        tls: { level: 'may', ca: caFile },
        timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 },
        connectionCache: { enabled: false },
      },
      { dns: { servers: [dns.resolver], timeoutSeconds: 2 }, mtaSts: { ca: caFile, timeoutSeconds: 3 } },
    );
  });
  after(async () => {
    await sh?.stop();
    for (const s of Object.values(mx)) await s.stop();
    await web?.stop();
    await dns?.stop();
  });

  async function send(rcpt: string, id: string): Promise<{ code: number; raw: string }> {
    sentBefore.set(rcpt.split('@')[1], sh.transactions().length);
    const d = await dial(sh.port);
    try {
      await d.cmd('EHLO client.test');
      const sent = await sendMessage(d, 'a@client.test', [rcpt], message(id));
      const r = sent.replies[1];
      return r.code !== 250 ? r : sent.final;
    } finally {
      d.close();
    }
  }

  /** The transaction line of the last message sent to `domain` (lines are written as sessions end, so others may land first). */
  async function txFor(domain: string): Promise<SmtpTransactionEvent> {
    const after = sentBefore.get(domain) ?? 0;
    for (let seen = after + 1; ; seen++) {
      const hit = (await sh.waitForTransactions(seen))
        .slice(after)
        .filter((t) => t.sts?.domain === domain)
        .at(-1);
      if (hit) return hit;
    }
  }
  /** Per domain, how many transaction lines there were before its last message was sent. */
  const sentBefore = new Map<string, number>();
  const holds = (s: FaultServer, id: string): boolean => s.stored.some((m) => m.body.includes(`<${id}@client.test>`));

  test('enforce, matching MX: delivered over verified TLS; the policy fetched once and audited with its text', async () => {
    assert.equal((await send('u@enf.sts.test', 'enf-1')).code, 250);
    assert.equal((await send('u@enf.sts.test', 'enf-2')).code, 250);
    assert.ok(holds(mx.enf, 'enf-1') && mx.enf.stored.every((m) => m.tls));
    const tx = await txFor('enf.sts.test');
    assert.deepEqual([tx.sts?.mode, tx.sts?.id, tx.sts?.mx, tx.sts?.result], ['enforce', '1', 'match', 'success']);
    assert.equal(web.fetches.get('enf.sts.test'), 1, 'fetched once for two messages');
    const policy = sh.events.find((e): e is StsPolicyEvent => e.event === 'mta-sts.policy' && e.domain === 'enf.sts.test');
    assert.equal(policy?.text, ENFORCE(['mx1.enf.sts.test']).replace(/\r\n$/, ''));
  });

  test('enforce, an MX outside the policy: skipped (never connected to), the next one takes the mail; none left: 4.7.5', async () => {
    assert.equal((await send('u@skip.sts.test', 'skip-1')).code, 250);
    assert.ok(holds(mx.enf, 'skip-1'));
    const alone = await send('u@none.sts.test', 'none-1');
    assert.equal(alone.code, 451, alone.raw);
    assert.match(alone.raw, /4\.7\.5 MTA-STS: no MX host of none\.sts\.test/);
    assert.equal(mx.rogue.connections, 0);
    assert.deepEqual([(await txFor('none.sts.test')).sts?.mx], ['mismatch']);
  });

  test('enforce, a certificate that does not verify: 4.7.5, nothing in cleartext; testing: delivered, the failure recorded', async () => {
    const r = await send('u@badcert.sts.test', 'badcert-1');
    assert.equal(r.code, 451, r.raw);
    assert.match(r.raw, /4\.7\.5/);
    assert.equal(mx.bad.stored.length, 0);
    assert.ok(!mx.bad.commands.some((c) => /^MAIL/i.test(c.line)), 'no MAIL, in TLS or in cleartext');
    assert.equal((await txFor('badcert.sts.test')).sts?.result, 'certificate-not-trusted');

    assert.equal((await send('u@testing.sts.test', 'testing-1')).code, 250);
    assert.ok(holds(mx.bad, 'testing-1'));
    const t = await txFor('testing.sts.test');
    assert.deepEqual([t.sts?.mode, t.sts?.result], ['testing', 'certificate-not-trusted']);
  });

  test('a wildcard pattern matches exactly one label', async () => {
    assert.equal((await send('u@wild.sts.test', 'wild-1')).code, 250);
    assert.ok(holds(mx.wild, 'wild-1'));
    assert.equal(mx.deep.connections, 0, 'a.b.wild.sts.test is two labels under *.wild.sts.test');
  });

  test('policy host down: a cached policy is still enforced; without one, delivered per level with sts-policy-fetch-error', async () => {
    const r = await send('u@nocache.sts.test', 'nocache-1');
    assert.equal(r.code, 250, r.raw);
    const t = await txFor('nocache.sts.test');
    assert.deepEqual([t.sts?.mode, t.sts?.fetchFailure], [undefined, 'sts-policy-fetch-error']);

    // A new id makes ticketbooth fetch again; the host is down: the cached policy (id 1) applies on.
    web.down.add('badcert.sts.test');
    await dns.update([zone({ ...ids, badcert: '2' })]);
    const again = await send('u@badcert.sts.test', 'badcert-2');
    assert.equal(again.code, 451, again.raw);
    const b = await txFor('badcert.sts.test');
    assert.deepEqual([b.sts?.mode, b.sts?.id, b.sts?.fetchFailure], ['enforce', '1', 'sts-policy-fetch-error']);
    assert.equal(mx.bad.stored.filter((m) => m.body.includes('badcert-2')).length, 0);
  });

  test('a new policy id is fetched again and applies: the trust key changes with it', async () => {
    web.policies.set('enf.sts.test', ENFORCE(['mx1.enf.sts.test'], 'testing'));
    await dns.update([zone({ ...ids, enf: '2' })]);
    const handshakes = sh.events.filter((e) => e.event === 'tls.handshake').length;
    assert.equal((await send('u@enf.sts.test', 'enf-3')).code, 250);
    await sh.waitForEvents('tls.handshake', handshakes + 1);
    assert.equal(web.fetches.get('enf.sts.test'), 2);
    const t = await txFor('enf.sts.test');
    assert.deepEqual([t.sts?.mode, t.sts?.id], ['testing', '2']);
    const keys = new Set(
      sh.events.flatMap((e) => (e.event === 'tls.handshake' && e.sts?.domain === 'enf.sts.test' ? [`${e.sts.id}:${e.key}`] : [])),
    );
    assert.equal(new Set([...keys].map((k) => k.split(':')[1])).size, 2, 'one trust key per policy');
  });

  test('policy fetches go through the configured egress proxy (CONNECT to port 443)', async () => {
    const proxy = await startConnectProxy(dns.resolver);
    const viaProxy = await startSmarthost(
      { route: { mode: 'mx', port }, tls: { level: 'may', ca: caFile }, connectionCache: { enabled: false } },
      { dns: { servers: [dns.resolver], timeoutSeconds: 2 }, mtaSts: { ca: caFile, proxy: proxy.url, timeoutSeconds: 3 } },
    );
    try {
      const fetchesBefore = web.fetches.get('wild.sts.test') ?? 0;
      const d = await dial(viaProxy.port);
      await d.cmd('EHLO client.test');
      assert.equal((await sendMessage(d, 'a@client.test', ['u@wild.sts.test'], message('proxied-1'))).final.code, 250);
      d.close();
      assert.deepEqual(proxy.requests, ['mta-sts.wild.sts.test:443']);
      assert.equal(web.fetches.get('wild.sts.test'), fetchesBefore + 1);
      const t = (await viaProxy.waitForTransactions(1)).at(-1)!;
      assert.deepEqual([t.sts?.mode, t.sts?.result], ['enforce', 'success']);
      assert.ok(holds(mx.wild, 'proxied-1'), 'enforced: the policy fetched through the proxy applied');
    } finally {
      await viaProxy.stop();
      await proxy.stop();
    }
  });
});
