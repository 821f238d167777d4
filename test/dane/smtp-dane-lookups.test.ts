import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCert, makeIssuedCert, type CertPair } from '../support/certs.js';
import { dnssecMissing, startDnssec, type DnssecDns } from '../support/dnssec.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { sendOne } from '../support/smtp-client.js';
import type { SmtpReply } from '../../src/upstream/smtp-client/reply-reader.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { noticeFailures } from '../../src/audit/failure-notices.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import type { SmtpTransactionEvent } from '../../src/audit/events.js';
import { tlsaOf } from '../support/tlsa.js';

/** The first certificate of a PEM chain: a server that sends its leaf alone. */
const leafOnly = (c: CertPair): CertPair => ({ ...c, cert: c.cert.slice(0, c.cert.indexOf('-----END CERTIFICATE-----') + 26) });

/**
 * Where TLSA is looked up (RFC 7672 2.2.1–2.2.3, as Postfix's tls_dane_resolve and dane_init) and
 * what a DANE-TA anchor may come from (RFC 7671 5.2.2), on real DNSSEC: nsd serves a signed zone
 * (lk.test) and two unsigned ones (plain.test, insec.test), unbound validates. Every MX host is a
 * real STARTTLS server on its own 127/8 address; it says what it stored, under which SNI, and
 * whether MAIL ever reached it.
 */
describe('smtp listener: DANE, where the TLSA records are and what anchors them', { skip: dnssecMissing() }, () => {
  let dns: DnssecDns;
  let port: number;
  const s: Record<string, FaultServer> = {};
  let dane: Smarthost;
  let daneMay: Smarthost;
  let daneOnly: Smarthost;
  const notices: string[] = [];

  before(async () => {
    const ee = (name: string): CertPair => makeCert([name]);
    const certs = {
      cname: ee('tgt-ok.lk.test'),
      cnameBad: ee('tgt-bad.lk.test'),
      fallback: ee('alias-fb.lk.test'),
      sa: ee('sa-ok.lk.test'),
      saBad: ee('sa-bad.lk.test'),
      im: ee('mx-im.lk.test'),
      imBad: ee('mx-imbad.lk.test'),
      plain: ee('mx-plain.lk.test'),
    };
    const other = makeCert(['elsewhere.test']);
    // One CA-issued leaf naming three MX hosts; the server sends the leaf alone.
    const issued = makeIssuedCert(['mx-ta200.lk.test', 'mx-ta210.lk.test', 'mx-ta201.lk.test']);
    // Sent with its CA; names one CNAME target and another host's alias (never a reference name when TLSA is at the target).
    const issuedTa = makeIssuedCert(['tgt-ta.lk.test', 'alias-ta2.lk.test']);
    const first = await startFaultServer({ host: '127.0.0.1', cert: certs.cname, starttls: true, name: 'tgt-ok.lk.test' });
    s.cname = first;
    port = first.port;
    const at = async (cert: CertPair, name: string): Promise<FaultServer> =>
      startFaultServer({ host: await freeLoopbackAddress(port), port, cert, starttls: true, name });
    s.cnameBad = await at(certs.cnameBad, 'tgt-bad.lk.test');
    s.fallback = await at(certs.fallback, 'tgt-fb.lk.test');
    s.sa = await at(certs.sa, 'h-ok.plain.test');
    s.saBad = await at(certs.saBad, 'h-bad.plain.test');
    s.im = await at(certs.im, 'mx-im.lk.test');
    s.imBad = await at(certs.imBad, 'mx-imbad.lk.test');
    s.plain = await at(certs.plain, 'mx-plain.lk.test');
    s.ta = await at(leafOnly(issued), 'mx-ta.lk.test');
    s.cnameTa = await at(issuedTa, 'tgt-ta.lk.test');
    const tlsa = (host: string, data: string): string => `_${port}._tcp.${host} 60 IN TLSA ${data}`;
    dns = await startDnssec([
      {
        origin: 'lk.test',
        security: 'anchored',
        records: [
          // CNAME'd MX hosts: matching at the target; wrong at the target (a matching one at the alias must not rescue it); none at the target.
          'cname-ok 60 IN MX 10 alias-ok',
          'alias-ok 60 IN CNAME tgt-ok',
          `tgt-ok 60 IN A ${s.cname.host}`,
          tlsa('tgt-ok', tlsaOf(certs.cname.cert)),
          'cname-bad 60 IN MX 10 alias-bad',
          'alias-bad 60 IN CNAME tgt-bad',
          `tgt-bad 60 IN A ${s.cnameBad.host}`,
          tlsa('tgt-bad', tlsaOf(other.cert)),
          tlsa('alias-bad', tlsaOf(certs.cnameBad.cert)),
          'cname-fb 60 IN MX 10 alias-fb',
          'alias-fb 60 IN CNAME tgt-fb',
          `tgt-fb 60 IN A ${s.fallback.host}`,
          tlsa('alias-fb', tlsaOf(certs.fallback.cert)),
          // A signed alias to an unsigned target: the alias's own TLSA.
          'sa-ok-dom 60 IN MX 10 sa-ok',
          'sa-ok 60 IN CNAME h-ok.plain.test.',
          tlsa('sa-ok', tlsaOf(certs.sa.cert)),
          'sa-bad-dom 60 IN MX 10 sa-bad',
          'sa-bad 60 IN CNAME h-bad.plain.test.',
          tlsa('sa-bad', tlsaOf(other.cert)),
          // Signed hosts that unsigned MX RRsets (insec.test) point to.
          `mx-im 60 IN A ${s.im.host}`,
          tlsa('mx-im', tlsaOf(certs.im.cert)),
          `mx-imbad 60 IN A ${s.imBad.host}`,
          tlsa('mx-imbad', tlsaOf(other.cert)),
          // Secure, no TLSA: dane acts as may.
          'notlsa 60 IN MX 10 mx-plain',
          `mx-plain 60 IN A ${s.plain.host}`,
          // DANE-TA with the anchor only in DNS (full certificate, full key), and by digest (then it must be sent).
          ...['ta200', 'ta210', 'ta201'].flatMap((n) => [`${n} 60 IN MX 10 mx-${n}`, `mx-${n} 60 IN A ${s.ta.host}`]),
          tlsa('mx-ta200', tlsaOf(issued.ca, 2, 0, 0)),
          tlsa('mx-ta210', tlsaOf(issued.ca, 2, 1, 0)),
          tlsa('mx-ta201', tlsaOf(issued.ca, 2, 0, 1)),
          // DANE-TA behind CNAMEs: the leaf must name the base domain (the target) or the next hop.
          ...['', '2'].flatMap((n) => [
            `cname-ta${n} 60 IN MX 10 alias-ta${n}`,
            `alias-ta${n} 60 IN CNAME tgt-ta${n}`,
            `tgt-ta${n} 60 IN A ${s.cnameTa.host}`,
            tlsa(`tgt-ta${n}`, tlsaOf(issuedTa.ca, 2, 0, 1)),
          ]),
        ],
      },
      { origin: 'plain.test', security: 'unsigned', records: [`h-ok 60 IN A ${s.sa.host}`, `h-bad 60 IN A ${s.saBad.host}`] },
      { origin: 'insec.test', security: 'unsigned', records: ['im 60 IN MX 10 mx-im.lk.test.', 'imbad 60 IN MX 10 mx-imbad.lk.test.'] },
    ]);
    const listener = (tls: Record<string, unknown>): Record<string, unknown> => ({
      route: { mode: 'mx', port },
      tls,
      timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 },
      connectionCache: { enabled: false },
    });
    const top = { dns: { servers: [dns.resolver], timeoutSeconds: 2 } };
    // The route's `ca` holds the CA the DANE-TA records name: it must not stand in for a certificate the server did not send.
    dane = await startSmarthost(listener({ level: 'dane', ca: join(dirname(issued.certFile), 'ca.pem') }), top);
    noticeFailures(dane.service.audit, (l) => notices.push(l));
    daneMay = await startSmarthost(listener({ level: 'dane', daneInsecureMx: 'may' }), top);
    daneOnly = await startSmarthost(listener({ level: 'dane-only' }), top);
  });
  after(async () => {
    for (const sh of [dane, daneMay, daneOnly]) await sh?.stop();
    for (const server of Object.values(s)) await server.stop();
    await dns?.stop();
  });

  const send = (sh: Smarthost, rcpt: string, id: string): Promise<SmtpReply> => sendOne(sh.port, rcpt, id);
  async function txTo(sh: Smarthost, nextHop: RegExp): Promise<SmtpTransactionEvent> {
    for (let seen = 1; ; seen++) {
      const hit = (await sh.waitForTransactions(seen)).filter((t) => nextHop.test(t.nextHop ?? '')).at(-1);
      if (hit) return hit;
    }
  }
  /** Delivered once, inside TLS, under this SNI. */
  function deliveredTo(server: FaultServer, sni: string, n = 1): void {
    assert.deepEqual(
      server.stored.map((m) => m.tls),
      Array<boolean>(n).fill(true),
    );
    assert.equal(server.servernames.at(-1), sni, 'SNI is the TLSA base domain');
  }
  /** The client got a 451 4.7.5 saying `words`; the host saw no MAIL, in TLS or in cleartext. */
  function refusedBy(server: FaultServer, r: { code: number; raw: string }, words: RegExp): void {
    assert.equal(r.code, 451, r.raw);
    assert.match(r.raw, /4\.7\.5/);
    assert.match(r.raw, words);
    assert.equal(server.stored.length, 0);
    assert.ok(!server.commands.some((c) => /^MAIL/i.test(c.line)), 'no MAIL reached the host');
  }

  test("CNAME'd MX host, matching 3 1 1 at the target: TLSA and SNI at the expanded name, Verified", async () => {
    const r = await send(dane, 'u@cname-ok.lk.test', 'cname-ok');
    assert.equal(r.code, 250, r.raw);
    deliveredTo(s.cname, 'tgt-ok.lk.test');
    const tx = await txTo(dane, /^alias-ok\.lk\.test\[/);
    assert.deepEqual(
      [tx.dane?.applied, tx.dane?.auth, tx.dane?.mxHost, tx.dane?.tlsaBase],
      ['dane', 'Verified', 'alias-ok.lk.test', 'tgt-ok.lk.test'],
    );
  });

  test("CNAME'd MX host, wrong 3 1 1 at the target: refused, though the alias's own record would match", async () => {
    const r = await send(dane, 'u@cname-bad.lk.test', 'cname-bad');
    refusedBy(s.cnameBad, r, /TLSA at tgt-bad\.lk\.test.*tlsa-mismatch/);
  });

  test("CNAME'd MX host, no TLSA at the target: the alias's records, and SNI, as Postfix", async () => {
    const r = await send(dane, 'u@cname-fb.lk.test', 'cname-fb');
    assert.equal(r.code, 250, r.raw);
    deliveredTo(s.fallback, 'alias-fb.lk.test');
    const tx = await txTo(dane, /^alias-fb\.lk\.test\[/);
    assert.deepEqual([tx.dane?.auth, tx.dane?.tlsaBase], ['Verified', undefined]);
  });

  test('DANE-TA behind a CNAME: the leaf names the expanded name, Verified; naming only the alias is a name mismatch', async () => {
    const r = await send(dane, 'u@cname-ta.lk.test', 'cname-ta');
    assert.equal(r.code, 250, r.raw);
    deliveredTo(s.cnameTa, 'tgt-ta.lk.test');
    const tx = await txTo(dane, /^alias-ta\.lk\.test\[/);
    assert.deepEqual([tx.dane?.auth, tx.dane?.tlsaBase], ['Verified', 'tgt-ta.lk.test']);
    assert.match(tx.dane?.matched ?? '', /^2 0 1 .* depth 1$/);
    const mails = (): number => s.cnameTa.commands.filter((c) => /^MAIL/i.test(c.line)).length;
    const mailsBefore = mails();
    const bad = await send(dane, 'u@cname-ta2.lk.test', 'cname-ta2');
    assert.equal(bad.code, 451, bad.raw);
    assert.match(bad.raw, /name-mismatch: the certificate names neither tgt-ta2\.lk\.test nor cname-ta2\.lk\.test/);
    assert.equal(s.cnameTa.stored.length, 1);
    assert.equal(mails(), mailsBefore, 'no MAIL for cname-ta2');
  });

  test("a signed alias to an unsigned target: the alias's own TLSA; matching Verified, wrong refused", async () => {
    const r = await send(dane, 'u@sa-ok-dom.lk.test', 'sa-ok');
    assert.equal(r.code, 250, r.raw);
    deliveredTo(s.sa, 'sa-ok.lk.test');
    const tx = await txTo(dane, /^sa-ok\.lk\.test\[/);
    assert.deepEqual([tx.dane?.applied, tx.dane?.auth, tx.dane?.mxDnssec, tx.dane?.tlsa], ['dane', 'Verified', 'secure', 'usable']);
    refusedBy(s.saBad, await send(dane, 'u@sa-bad-dom.lk.test', 'sa-bad'), /tlsa-mismatch/);
  });

  test('an unsigned MX RRset to a signed host (daneInsecureMx dane, the default): its TLSA applies; a match is Trusted, a mismatch refused', async () => {
    const r = await send(dane, 'u@im.insec.test', 'im');
    assert.equal(r.code, 250, r.raw);
    deliveredTo(s.im, 'mx-im.lk.test');
    const tx = await txTo(dane, /^mx-im\.lk\.test\[/);
    assert.deepEqual([tx.dane?.applied, tx.dane?.auth, tx.dane?.mxDnssec], ['dane', 'Trusted', 'insecure']);
    refusedBy(s.imBad, await send(dane, 'u@imbad.insec.test', 'imbad'), /tlsa-mismatch/);
  });

  test('daneInsecureMx may: the same host is opportunistic TLS (the wrong record unused); dane-only defers it', async () => {
    const r = await send(daneMay, 'u@imbad.insec.test', 'imbad-may');
    assert.equal(r.code, 250, r.raw);
    deliveredTo(s.imBad, 'mx-imbad.lk.test');
    const tx = await txTo(daneMay, /^mx-imbad\.lk\.test\[/);
    assert.deepEqual([tx.dane?.applied, tx.dane?.tlsa], ['may', 'insecure']);
    const o = await send(daneOnly, 'u@im.insec.test', 'im-only');
    assert.equal(o.code, 451, o.raw);
    assert.match(o.raw, /insecure-mx: dane-only needs a DNSSEC-signed MX RRset/);
    assert.equal(s.im.stored.length, 1, 'only the dane listener delivered there');
  });

  test('DANE-TA 2 0 0 and 2 1 0 with the anchor only in DNS: the chain built from the record, Verified', async () => {
    for (const [n, record] of [
      ['ta200', /^2 0 0 .* depth 1$/],
      ['ta210', /^2 1 0 .* depth 1$/],
    ] as const) {
      const r = await send(dane, `u@${n}.lk.test`, n);
      assert.equal(r.code, 250, `${n}: ${r.raw}`);
      assert.equal(s.ta.servernames.at(-1), `mx-${n}.lk.test`);
      const tx = await txTo(dane, new RegExp(`^mx-${n}\\.lk\\.test\\[`));
      assert.equal(tx.dane?.auth, 'Verified', n);
      assert.match(tx.dane?.matched ?? '', record);
    }
    assert.equal(s.ta.stored.length, 2);
  });

  test("DANE-TA 2 0 1, the CA not sent: refused for the missing anchor, though the route's ca holds it", async () => {
    const before = s.ta.stored.length;
    const mails = (): number => s.ta.commands.filter((c) => /^MAIL/i.test(c.line)).length;
    const mailsBefore = mails();
    const r = await send(dane, 'u@ta201.lk.test', 'ta201');
    assert.equal(r.code, 451, r.raw);
    assert.match(r.raw, /anchor-not-sent: the chain sent stops at .*ticketbooth test CA.*which the server did not send/);
    assert.equal(s.ta.stored.length, before);
    assert.equal(mails(), mailsBefore, 'no MAIL reached the host');
    const tx = await txTo(dane, /^ta201\.lk\.test:/);
    assert.deepEqual([tx.dane?.reason, tx.dane?.result], ['anchor-not-sent', 'certificate-not-trusted']);
    assert.ok(
      notices.some((l) => /TLS with .* failed \(certificate\): DANE mx-ta201\.lk\.test: anchor-not-sent/.test(l)),
      notices.join('\n'),
    );
  });

  test('a resumed session where dane acts as may still says how far the peer was trusted', async () => {
    for (const id of ['may-1', 'may-2']) assert.equal((await send(dane, 'u@notlsa.lk.test', id)).code, 250);
    assert.equal(s.plain.resumed, 1, 'the server resumed the second session');
    // Each handshake line is written when its connection closes: wait for both.
    const toPlain = async (n: number) => (await dane.waitForEvents('tls.handshake', n)).filter((e) => e.servername === 'mx-plain.lk.test');
    let hs = await toPlain(1);
    for (let n = 2; hs.length < 2; n++) hs = await toPlain(n);
    assert.deepEqual(
      hs.map((e) => [e.resumed, e.dane?.applied, e.dane?.auth]),
      [
        [false, 'may', 'Untrusted'],
        [true, 'may', 'Untrusted'],
      ],
    );
  });
});
