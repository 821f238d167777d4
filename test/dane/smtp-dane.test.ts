import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { makeCert, makeIssuedCert, type CertPair } from '../support/certs.js';
import dnsPacket from 'dns-packet';
import { SecureResolver } from '../../src/dns/secure-resolver.js';
import { dnssecMissing, queryDns, startDnssec, type DnssecDns, type ZoneSpec } from '../support/dnssec.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { sendOne } from '../support/smtp-client.js';
import type { SmtpReply } from '../../src/upstream/smtp-client/reply-reader.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { noticeFailures } from '../../src/audit/failure-notices.js';
import { sample } from '../support/metrics.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import type { SmtpTransactionEvent } from '../../src/audit/events.js';
import { tlsaOf } from '../support/tlsa.js';

const TRUNCATED = dnsPacket.TRUNCATED_RESPONSE;
/** A DANE host failing at each stage before the transaction: none of them may end in cleartext. */
const FAULTS = ['no-starttls', 'drop-at-starttls', 'garbage-at-starttls', 'drop-at-tls', 'garbage-at-tls', 'drop-at-tls-ehlo'] as const;

/**
 * DANE (RFC 7672) against a really signed zone: nsd serves zones signed by ldns-signzone, unbound
 * validates them with the test zone's trust anchor, and ticketbooth trusts unbound's AD bit. Every
 * MX host is a real SMTP server on its own 127/8 address (MX records carry no port), which records
 * what it was sent and whether it came inside TLS: "never cleartext" is read from the far side.
 */
describe('smtp listener: DANE through a validating resolver', { skip: dnssecMissing() }, () => {
  let dns: DnssecDns;
  let port: number;
  const servers: Record<string, FaultServer> = {};
  let dane: Smarthost;
  let daneOnly: Smarthost;
  let eeCert: CertPair;
  let zone: (tlsaRoll: string) => ZoneSpec;
  /** What a person at the terminal is told (stderr) by the `dane` listener. */
  const notices: string[] = [];
  const junkRecords = Array.from({ length: 19 }, (_, i) => createHash('sha512').update(`junk ${i}`).digest('hex').toUpperCase());

  before(async () => {
    eeCert = makeCert(['mx-ee.dane.test']);
    const taCert = makeIssuedCert(['mx-ta.dane.test']);
    const otherKey = makeCert(['mx-bad.dane.test']);
    const plainCert = makeCert(['mx-plain.dane.test']);
    const first = await startFaultServer({ host: '127.0.0.1', cert: eeCert, starttls: true, name: 'mx-ee.dane.test' });
    servers.ee = first;
    port = first.port;
    const at = async (name: string, cert: CertPair, starttls = true): Promise<FaultServer> =>
      startFaultServer({ host: await freeLoopbackAddress(port), port, cert, starttls, name });
    servers.ta = await at('mx-ta.dane.test', taCert);
    servers.bad = await at('mx-bad.dane.test', otherKey);
    servers.plain = await at('mx-plain.dane.test', plainCert);
    servers.unusable = await at('mx-unusable.dane.test', plainCert);
    servers.bogus = await at('mx-bogus.dane.test', eeCert);
    servers.roll = await at('mx-roll.dane.test', eeCert);
    servers.unsigned = await at('mx.unsigned.test', plainCert);
    servers.wrong = await at('mx.wrong.test', eeCert);
    for (const [i, fault] of FAULTS.entries())
      servers[`f${i}`] = await startFaultServer({
        host: await freeLoopbackAddress(port),
        port,
        cert: eeCert,
        starttls: fault !== 'no-starttls',
        fault: fault === 'no-starttls' ? 'none' : fault,
        name: `mx-f${i}.dane.test`,
      });
    zone = (tlsaRoll) => ({
      origin: 'dane.test',
      security: 'anchored',
      records: [
        'ee 60 IN MX 10 mx-ee',
        'ta 60 IN MX 10 mx-ta',
        'mismatch 60 IN MX 10 mx-bad',
        'mismatch 60 IN MX 20 mx-ee',
        'onlybad 60 IN MX 10 mx-bad',
        'notlsa 60 IN MX 10 mx-plain',
        'unusable 60 IN MX 10 mx-unusable',
        'bogus 60 IN MX 10 mx-bogus',
        'roll 60 IN MX 10 mx-roll',
        'many 60 IN MX 10 mx-many',
        `mx-many 60 IN A ${servers.ee.host}`,
        // More records than a 1232-byte UDP answer holds: the resolver truncates, the lookup goes on over TCP.
        ...junkRecords.map((hex) => `_${port}._tcp.mx-many 60 IN TLSA 3 1 2 ${hex}`),
        `_${port}._tcp.mx-many 60 IN TLSA ${tlsaOf(eeCert.cert)}`,
        ...FAULTS.flatMap((_, i) => [
          `f${i} 60 IN MX 10 mx-f${i}`,
          `mx-f${i} 60 IN A ${servers[`f${i}`].host}`,
          `_${port}._tcp.mx-f${i} 60 IN TLSA ${tlsaOf(eeCert.cert)}`,
        ]),
        `mx-ee 60 IN A ${servers.ee.host}`,
        `mx-ta 60 IN A ${servers.ta.host}`,
        `mx-bad 60 IN A ${servers.bad.host}`,
        `mx-plain 60 IN A ${servers.plain.host}`,
        `mx-unusable 60 IN A ${servers.unusable.host}`,
        `mx-bogus 60 IN A ${servers.bogus.host}`,
        `mx-roll 60 IN A ${servers.roll.host}`,
        `_${port}._tcp.mx-ee 60 IN TLSA ${tlsaOf(eeCert.cert)}`,
        `_${port}._tcp.mx-ta 60 IN TLSA ${tlsaOf(taCert.ca, 2, 0, 1)}`,
        `_${port}._tcp.mx-bad 60 IN TLSA ${tlsaOf(eeCert.cert)}`,
        `_${port}._tcp.mx-unusable 60 IN TLSA ${tlsaOf(plainCert.cert, 1, 1, 1)}`,
        `_${port}._tcp.mx-bogus 60 IN TLSA ${tlsaOf(eeCert.cert)}`,
        `_${port}._tcp.mx-roll 1 IN TLSA ${tlsaRoll}`,
      ],
      tamper: [{ name: `_${port}._tcp.mx-bogus.dane.test`, type: 'TLSA' }],
    });
    dns = await startDnssec([
      zone(tlsaOf(eeCert.cert)),
      { origin: 'unsigned.test', security: 'unsigned', records: ['@ 60 IN MX 10 mx', `mx 60 IN A ${servers.unsigned.host}`] },
      { origin: 'wrong.test', security: 'wrong-anchor', records: ['@ 60 IN MX 10 mx', `mx 60 IN A ${servers.wrong.host}`] },
    ]);
    const listener = (level: string): Record<string, unknown> => ({
      route: { mode: 'mx', port },
      tls: { level },
      timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 },
      // Each message its own connection: the resumption cases count handshakes.
      connectionCache: { enabled: false },
    });
    dane = await startSmarthost(listener('dane'), {
      dns: { servers: [dns.resolver], timeoutSeconds: 2 },
      admin: { listen: '127.0.0.1:0' },
    });
    noticeFailures(dane.service.audit, (l) => notices.push(l));
    daneOnly = await startSmarthost(listener('dane-only'), { dns: { servers: [dns.resolver], timeoutSeconds: 2 } });
  });
  after(async () => {
    await dane?.stop();
    await daneOnly?.stop();
    for (const s of Object.values(servers)) await s.stop();
    await dns?.stop();
  });

  const send = (sh: Smarthost, rcpt: string, id: string): Promise<SmtpReply> => sendOne(sh.port, rcpt, id);

  const bodies = (s: FaultServer): string[] => s.stored.map((m) => m.body.toString());
  /** The latest transaction line whose next hop matches (lines are written as sessions end, so others may land in between). */
  async function txTo(sh: Smarthost, nextHop: RegExp): Promise<SmtpTransactionEvent> {
    for (let seen = 1; ; seen++) {
      const hit = (await sh.waitForTransactions(seen)).filter((t) => nextHop.test(t.nextHop ?? '')).at(-1);
      if (hit) return hit;
    }
  }

  test('DANE-EE: the leaf matches its TLSA record: delivered inside TLS, Verified', async () => {
    const r = await send(dane, 'u@ee.dane.test', 'ee-1');
    assert.equal(r.code, 250, r.raw);
    assert.deepEqual(
      servers.ee.stored.map((m) => m.tls),
      [true],
    );
    const tx = await txTo(dane, /^mx-ee\.dane\.test\[/);
    assert.equal(tx.dane?.applied, 'dane');
    assert.equal(tx.dane?.auth, 'Verified');
    assert.equal(tx.dane?.mxDnssec, 'secure');
    assert.match(tx.dane?.matched ?? '', /^3 1 1 /);
    const hs = (await dane.waitForEvents('tls.handshake', 1)).at(-1)!;
    assert.equal(hs.servername, 'mx-ee.dane.test', 'SNI is the TLSA base domain');
    assert.equal(hs.dane?.auth, 'Verified');
  });

  test('DANE-TA: the sent CA named by TLSA signs a leaf that names the MX host', async () => {
    const r = await send(dane, 'u@ta.dane.test', 'ta-1');
    assert.equal(r.code, 250, r.raw);
    assert.equal(servers.ta.stored.length, 1);
    const tx = await txTo(dane, /^mx-ta\./);
    assert.equal(tx.dane?.auth, 'Verified');
    assert.match(tx.dane?.matched ?? '', /^2 0 1 .* depth 1$/);
  });

  test('TLSA mismatch: that MX is given up (never cleartext) and the next one takes the mail; alone, 4.7.5', async () => {
    const r = await send(dane, 'u@mismatch.dane.test', 'mismatch-1');
    assert.equal(r.code, 250, r.raw);
    assert.ok(
      bodies(servers.ee).some((b) => b.includes('mismatch-1')),
      'the second MX got it',
    );
    const failed = dane.events.filter((e) => e.event === 'tls.handshake' && e.destination.startsWith(servers.bad.host));
    assert.equal(failed.length, 1);
    assert.equal(failed[0].event === 'tls.handshake' && failed[0].dane?.reason, 'tlsa-mismatch');

    const only = await send(dane, 'u@onlybad.dane.test', 'onlybad-1');
    assert.equal(only.code, 451, only.raw);
    assert.match(only.raw, /4\.7\.5/);
    assert.equal(servers.bad.stored.length, 0, 'nothing reached the mismatching host');
    assert.ok(
      servers.bad.commands.every((c) => !/^MAIL/i.test(c.line)),
      'no MAIL, in TLS or in cleartext',
    );
    const tx = await txTo(dane, /^onlybad\./);
    assert.equal(tx.dane?.reason, 'tlsa-mismatch');
  });

  test('secure, no TLSA records: dane acts as may (TLS, unauthenticated); dane-only defers', async () => {
    const r = await send(dane, 'u@notlsa.dane.test', 'notlsa-1');
    assert.equal(r.code, 250, r.raw);
    assert.deepEqual(
      servers.plain.stored.map((m) => m.tls),
      [true],
    );
    const tx = await txTo(dane, /^mx-plain\./);
    assert.equal(tx.dane?.applied, 'may');
    assert.equal(tx.dane?.auth, 'Untrusted');
    const o = await send(daneOnly, 'u@notlsa.dane.test', 'notlsa-2');
    assert.equal(o.code, 451, o.raw);
    assert.match(o.raw, /4\.7\.5/);
    assert.equal(servers.plain.stored.length, 1);
    const d = await txTo(daneOnly, /^notlsa\./);
    assert.deepEqual([d.dane?.applied, d.dane?.reason], ['defer', 'dane-required']);
  });

  test('unsigned zone: dane acts as may; dane-only defers (insecure MX)', async () => {
    const r = await send(dane, 'u@unsigned.test', 'unsigned-1');
    assert.equal(r.code, 250, r.raw);
    const tx = await txTo(dane, /^mx\.unsigned\.test\[/);
    assert.deepEqual([tx.dane?.applied, tx.dane?.tlsa], ['may', 'insecure']);
    const o = await send(daneOnly, 'u@unsigned.test', 'unsigned-2');
    assert.equal(o.code, 451, o.raw);
    const d = await txTo(daneOnly, /^unsigned\.test:/);
    assert.deepEqual([d.dane?.applied, d.dane?.reason], ['defer', 'insecure-mx']);
    assert.equal(servers.unsigned.stored.length, 1);
  });

  test('records present but none usable: dane requires TLS without authentication (encrypt); dane-only defers', async () => {
    const r = await send(dane, 'u@unusable.dane.test', 'unusable-1');
    assert.equal(r.code, 250, r.raw);
    assert.deepEqual(
      servers.unusable.stored.map((m) => m.tls),
      [true],
    );
    const tx = await txTo(dane, /^mx-unusable\./);
    assert.equal(tx.dane?.applied, 'encrypt');
    const o = await send(daneOnly, 'u@unusable.dane.test', 'unusable-2');
    assert.equal(o.code, 451, o.raw);
    assert.equal(servers.unusable.stored.length, 1);
  });

  test('a TLSA RRset too large for UDP: read over TCP, every record tried, the last one matches', async () => {
    const udp = await queryDns(dns.resolver, `_${port}._tcp.mx-many.dane.test`, 'TLSA');
    assert.ok(((udp.flags ?? 0) & TRUNCATED) !== 0, 'the UDP answer was truncated');
    const found = await new SecureResolver({ servers: [dns.resolver], timeoutMs: 2000, tries: 1 }).query(
      `_${port}._tcp.mx-many.dane.test`,
      'TLSA',
    );
    assert.deepEqual([found.status, found.secure, found.records.length], ['NOERROR', true, 20]);
    assert.equal((await send(dane, 'u@many.dane.test', 'many-1')).code, 250);
    const tx = await txTo(dane, /^mx-many\./);
    assert.deepEqual([tx.dane?.auth, tx.dane?.records], ['Verified', 20]);
  });

  test('a DANE level without dns.servers does not start: the AD bit is trusted only from resolvers named there', async () => {
    await assert.rejects(startSmarthost({ route: { mode: 'mx' }, tls: { level: 'dane' } }), /needs dns\.servers/);
  });

  test('no path to cleartext: a TLSA-authenticated host failing at STARTTLS, the handshake or EHLO inside TLS gets no MAIL', async () => {
    for (const [i, fault] of FAULTS.entries()) {
      const r = await send(dane, `u@f${i}.dane.test`, `fault-${fault}`);
      const server = servers[`f${i}`];
      assert.equal(r.code, 451, `${fault}: ${r.raw}`);
      assert.match(r.raw, /4\.7\.[45]|4\.4\.[12]/, fault);
      assert.ok(server.connections >= 1, `${fault}: the host was tried`);
      assert.equal(server.connections, 1, `${fault}: tried once, no cleartext retry`);
      assert.ok(!server.commands.some((c) => /^MAIL/i.test(c.line)), `${fault}: no MAIL, in TLS or in cleartext`);
    }
  });

  test('a bogus TLSA RRset (resolver SERVFAIL): 4.7.5, and the host is never connected to', async () => {
    for (const sh of [dane, daneOnly]) {
      const r = await send(sh, 'u@bogus.dane.test', 'bogus');
      assert.equal(r.code, 451, r.raw);
      assert.match(r.raw, /4\.7\.5/);
      const tx = await txTo(sh, /^bogus\.dane\.test:/);
      assert.deepEqual([tx.dane?.applied, tx.dane?.reason], ['defer', 'dnssec-bogus']);
    }
    assert.equal(servers.bogus.connections, 0);
    assert.ok(
      notices.some((l) => /DANE deferred mail for bogus\.dane\.test:\d+ \(dnssec-bogus/.test(l)),
      notices.join('\n'),
    );
  });

  test('a bogus MX RRset (signed under another anchor): 4xx, never a connection', async () => {
    const r = await send(dane, 'u@wrong.test', 'wrong');
    assert.equal(r.code, 451, r.raw);
    assert.equal(servers.wrong.connections, 0);
  });

  test('TLSA rollover: the new set is a new trust key (one full handshake, tlsa-changed), then resumption again', async () => {
    const handshakesTo = (): Array<{ key: string; resumed: boolean; fullCause?: string }> =>
      dane.events.flatMap((e) => (e.event === 'tls.handshake' && e.servername === 'mx-roll.dane.test' ? [e] : []));
    const allHandshakes = (): number => dane.events.filter((e) => e.event === 'tls.handshake').length;
    // Each line is written when its connection closes: wait for the ones of the messages just sent.
    const sendAndLog = async (id: string): Promise<void> => {
      const before = allHandshakes();
      assert.equal((await send(dane, 'u@roll.dane.test', id)).code, 250);
      await dane.waitForEvents('tls.handshake', before + 1);
    };
    for (let i = 0; i < 2; i++) await sendAndLog(`roll-a${i}`);
    const [fullA, resumedA] = handshakesTo();
    assert.equal(resumedA?.resumed, true, 'resumed under the first set');

    // The same key published as 3 0 1 (the certificate) instead of 3 1 1: the server's key is unchanged.
    await dns.update([zone(tlsaOf(eeCert.cert, 3, 0, 1))]);
    // The TLSA answer (TTL 1 s) is cached until it expires: deliver until a handshake is made under the new set.
    const deadline = Date.now() + 10_000;
    let n = 0;
    while (!handshakesTo().some((h) => h.key !== fullA.key) && Date.now() < deadline) await sendAndLog(`roll-b${n++}`);
    const afterRoll = handshakesTo().filter((h) => h.key !== fullA.key);
    assert.ok(afterRoll.length > 0, 'a handshake under the new TLSA set');
    assert.deepEqual([afterRoll[0].resumed, afterRoll[0].fullCause], [false, 'tlsa-changed']);
    await sendAndLog('roll-c');
    assert.equal(handshakesTo().at(-1)?.resumed, true, 'resumed again under the new set');
    const summary = handshakesTo().map((h) => `${h.key.slice(0, 4)}:${h.resumed ? 'R' : 'F'}${h.fullCause ? `(${h.fullCause})` : ''}`);
    // The server's own count agrees: what the audit calls resumed, the server resumed.
    assert.equal(servers.roll.resumed, handshakesTo().filter((h) => h.resumed).length, summary.join(' '));
    assert.equal(servers.roll.tlsSessions, handshakesTo().length);
  });

  test('the metric counts transactions per DANE outcome', async () => {
    const text = await (await fetch(`http://127.0.0.1:${dane.service.admin!.address().port}/metrics`)).text();
    const count = (applied: string, outcome: string): number =>
      sample(text, 'ticketbooth_smtp_dane_total', { listener: 'sh', applied, outcome }) ?? 0;
    const tx = dane.transactions();
    const expected = (applied: string, outcome: string): number =>
      tx.filter((t) => t.dane?.applied === applied && (t.dane.reason ?? t.dane.auth) === outcome).length;
    for (const [applied, outcome] of [
      ['dane', 'Verified'],
      ['dane', 'tlsa-mismatch'],
      ['defer', 'dnssec-bogus'],
      ['may', 'Untrusted'],
      ['encrypt', 'Untrusted'],
    ]) {
      assert.ok(expected(applied, outcome) > 0, `${applied} ${outcome} happened`);
      assert.equal(count(applied, outcome), expected(applied, outcome), `${applied} ${outcome}`);
    }
  });
});
