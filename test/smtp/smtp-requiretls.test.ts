import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert, makeIssuedCert } from '../support/certs.js';
import { dnssecMissing, startDnssec, type DnssecDns } from '../support/dnssec.js';
import { startPolicyServer, type PolicyServer } from '../support/policy-server.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { sample } from '../support/metrics.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { until } from '../support/until.js';
import { tlsaOf } from '../support/tlsa.js';

/**
 * REQUIRETLS (RFC 8689) on the DNSSEC rig: a message that asks for it reaches only a host found
 * through a signed MX RRset, authenticated by its TLSA record, and announcing REQUIRETLS, which
 * then gets it on MAIL inside TLS; every other recipient hears 550 5.7.30 at RCPT and its host
 * never sees MAIL. An unsigned zone's MX hosts count as found securely only under an enforced
 * MTA-STS policy (a real HTTPS policy host), never under `testing`. The hosts' own records of what
 * they were sent are the verdict.
 */
const WITH_REQUIRETLS = ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE 10240000', 'REQUIRETLS'];

describe('REQUIRETLS: only to a hop found securely, authenticated and announcing it; else 5.7.30', { skip: dnssecMissing() }, () => {
  let dns: DnssecDns;
  let sh: Smarthost;
  let web: PolicyServer;
  const hosts: Record<'ok' | 'silent' | 'notlsa' | 'unsigned' | 'enf' | 'tst', FaultServer> = {} as never;

  before(async () => {
    const cert = makeCert(['mx.rt.test']);
    hosts.ok = await startFaultServer({ host: '127.0.0.1', cert, starttls: true, name: 'mx-ok.rt.test', extensions: WITH_REQUIRETLS });
    const port = hosts.ok.port;
    const at = async (name: string, extensions?: string[]): Promise<FaultServer> =>
      startFaultServer({ host: await freeLoopbackAddress(port), port, cert, starttls: true, name, ...(extensions ? { extensions } : {}) });
    hosts.silent = await at('mx-silent.rt.test');
    hosts.notlsa = await at('mx-notlsa.rt.test', WITH_REQUIRETLS);
    hosts.unsigned = await at('mx.rtu.test', WITH_REQUIRETLS);
    // MTA-STS in an unsigned zone: a WebPKI certificate (the CA is the smarthost's) and a policy host.
    const webPki = makeIssuedCert(['mx.enf.rts.test', 'mx.tst.rts.test', 'mta-sts.enf.rts.test', 'mta-sts.tst.rts.test']);
    const caFile = join(tmpdir(), `tb-rt-ca-${process.pid}.pem`);
    writeFileSync(caFile, webPki.ca);
    const sts = async (name: string): Promise<FaultServer> =>
      startFaultServer({ host: await freeLoopbackAddress(port), port, cert: webPki, starttls: true, name, extensions: WITH_REQUIRETLS });
    hosts.enf = await sts('mx.enf.rts.test');
    hosts.tst = await sts('mx.tst.rts.test');
    web = await startPolicyServer(await freeLoopbackAddress(443), webPki);
    for (const [d, mode] of [
      ['enf', 'enforce'],
      ['tst', 'testing'],
    ])
      web.policies.set(`${d}.rts.test`, `version: STSv1\r\nmode: ${mode}\r\nmx: mx.${d}.rts.test\r\nmax_age: 86400\r\n`);
    dns = await startDnssec([
      {
        origin: 'rt.test',
        security: 'anchored',
        records: [
          'ok 60 IN MX 10 mx-ok',
          'silent 60 IN MX 10 mx-silent',
          'notlsa 60 IN MX 10 mx-notlsa',
          `mx-ok 60 IN A ${hosts.ok.host}`,
          `mx-silent 60 IN A ${hosts.silent.host}`,
          `mx-notlsa 60 IN A ${hosts.notlsa.host}`,
          `_${port}._tcp.mx-ok 60 IN TLSA ${tlsaOf(cert.cert)}`,
          `_${port}._tcp.mx-silent 60 IN TLSA ${tlsaOf(cert.cert)}`,
        ],
      },
      { origin: 'rtu.test', security: 'unsigned', records: ['@ 60 IN MX 10 mx', `mx 60 IN A ${hosts.unsigned.host}`] },
      {
        origin: 'rts.test',
        security: 'unsigned',
        records: (['enf', 'tst'] as const).flatMap((d) => [
          `${d} 60 IN MX 10 mx.${d}`,
          `mx.${d} 60 IN A ${hosts[d].host}`,
          `_mta-sts.${d} 60 IN TXT "v=STSv1; id=1"`,
          `mta-sts.${d} 60 IN A ${web.address}`,
        ]),
      },
    ]);
    sh = await startSmarthost(
      {
        route: { mode: 'mx', port },
        tls: { level: 'dane', ca: caFile },
        timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 },
      },
      {
        dns: { servers: [dns.resolver], timeoutSeconds: 2 },
        mtaSts: { ca: caFile, timeoutSeconds: 3 },
        admin: { listen: '127.0.0.1:0' },
      },
    );
  });
  after(async () => {
    await sh?.stop();
    for (const h of Object.values(hosts)) await h.stop();
    await web?.stop();
    await dns?.stop();
  });

  /** One message to `rcpt`, with or without REQUIRETLS: the RCPT reply, and the final one when there was DATA. */
  async function send(rcpt: string, id: string, requireTls: boolean): Promise<{ rcpt: string; final?: number }> {
    const d = await dial(sh.port);
    try {
      const ehlo = await d.cmd('EHLO client.test');
      assert.match(ehlo.raw, /^250[ -]REQUIRETLS\r$/m);
      const sent = await sendMessage(d, 'a@client.test', [rcpt], message(id), requireTls ? ' REQUIRETLS' : '');
      return { rcpt: sent.replies[1].raw, ...(sent.replies[1].code === 250 ? { final: sent.final.code } : {}) };
    } finally {
      d.close();
    }
  }
  const mails = (h: FaultServer): Array<{ tls: boolean; line: string }> => h.commands.filter((c) => c.line.startsWith('MAIL'));

  test('a DANE-authenticated host behind a signed MX that announces REQUIRETLS: delivered, REQUIRETLS passed on inside TLS', async () => {
    const r = await send('u@ok.rt.test', 'rt-ok', true);
    assert.equal(r.final, 250, r.rcpt);
    assert.deepEqual(mails(hosts.ok), [{ tls: true, line: 'MAIL FROM:<a@client.test> REQUIRETLS' }]);
    const [tx] = await sh.waitForTransactions(1);
    assert.deepEqual([tx.requireTls, tx.dane?.auth], ['passed-on', 'Verified']);
  });

  test('a host that does not announce REQUIRETLS: 550 5.7.30 at RCPT, it never saw MAIL; without REQUIRETLS the same host takes the message', async () => {
    const r = await send('u@silent.rt.test', 'rt-silent', true);
    assert.match(r.rcpt, /^550 5\.7\.30 REQUIRETLS: .*does not announce REQUIRETLS/);
    assert.equal(mails(hosts.silent).length, 0);
    assert.equal((await send('u@silent.rt.test', 'rt-silent-plain', false)).final, 250);
    assert.deepEqual(
      hosts.silent.stored.map((m) => m.tls),
      [true],
    );
  });

  test('no TLSA (DANE gives may) and an unsigned zone: 5.7.30, the hosts never connected to; the refusals audited with why', async () => {
    const before = { notlsa: hosts.notlsa.connections, unsigned: hosts.unsigned.connections };
    assert.match(
      (await send('u@notlsa.rt.test', 'rt-notlsa', true)).rcpt,
      /^550 5\.7\.30 REQUIRETLS: mx-notlsa\.rt\.test would not be authenticated/,
    );
    assert.match((await send('u@rtu.test', 'rt-unsigned', true)).rcpt, /^550 5\.7\.30 REQUIRETLS: mx\.rtu\.test was not found securely/);
    assert.deepEqual({ notlsa: hosts.notlsa.connections, unsigned: hosts.unsigned.connections }, before);
    // Each line is written when its client session ends.
    const of = (hop: RegExp): string | undefined =>
      sh
        .transactions()
        .filter((t) => hop.test(t.nextHop ?? ''))
        .at(-1)?.requireTls;
    await until(() => of(/^notlsa\.rt\.test/) !== undefined && of(/^rtu\.test/) !== undefined, 10_000, 'both transaction lines');
    assert.equal(of(/^notlsa\.rt\.test/), 'not-authenticated');
    assert.equal(of(/^rtu\.test/), 'not-found-securely');
    const metrics = await (await fetch(`http://127.0.0.1:${sh.service.admin!.address().port}/metrics`)).text();
    const count = (result: string): number => sample(metrics, 'ticketbooth_smtp_requiretls_total', { listener: 'sh', result }) ?? 0;
    assert.deepEqual(
      ['not-authenticated', 'not-found-securely'].map(count),
      ['not-authenticated', 'not-found-securely'].map((r) => sh.transactions().filter((t) => t.requireTls === r).length),
    );
  });

  test('a cached connection made without the conditions is never ridden by a REQUIRETLS message', async () => {
    // A plain message to the unauthenticated host leaves its connection in the cache ...
    assert.equal((await send('u@notlsa.rt.test', 'rt-plain', false)).final, 250);
    // ... which the REQUIRETLS one does not take: refused, and the host saw one MAIL only.
    assert.match((await send('u@notlsa.rt.test', 'rt-again', true)).rcpt, /^550 5\.7\.30 /);
    assert.equal(mails(hosts.notlsa).length, 1);
  });

  test('an unsigned zone under MTA-STS: enforce counts as found securely (delivered, REQUIRETLS passed on); testing is refused with 5.7.30', async () => {
    const enf = await send('u@enf.rts.test', 'rt-enforce', true);
    assert.equal(enf.final, 250, enf.rcpt);
    assert.deepEqual(mails(hosts.enf), [{ tls: true, line: 'MAIL FROM:<a@client.test> REQUIRETLS' }]);
    const before = hosts.tst.connections;
    assert.match(
      (await send('u@tst.rts.test', 'rt-testing', true)).rcpt,
      /^550 5\.7\.30 REQUIRETLS: mx\.tst\.rts\.test was not found securely/,
    );
    assert.equal(hosts.tst.connections, before, 'the host of a testing policy is never connected to');
    const of = (domain: string) =>
      sh
        .transactions()
        .filter((t) => t.nextHop?.startsWith(domain) || t.sts?.domain === domain)
        .at(-1);
    await until(() => of('tst.rts.test') !== undefined && of('enf.rts.test') !== undefined, 10_000, 'both transaction lines');
    assert.deepEqual([of('enf.rts.test')!.requireTls, of('enf.rts.test')!.sts?.mode], ['passed-on', 'enforce']);
    assert.deepEqual([of('tst.rts.test')!.requireTls, of('tst.rts.test')!.sts?.mode], ['not-found-securely', 'testing']);
    // Without REQUIRETLS the testing domain's host takes the message (testing enforces nothing).
    assert.equal((await send('u@tst.rts.test', 'rt-testing-plain', false)).final, 250);
    assert.equal(hosts.tst.stored.length, 1);
  });
});
