import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { dnssecMissing, queryDns, startDnssec, type DnssecDns, type DnsResponse, type ZoneSpec } from '../support/dnssec.js';

/**
 * The DNSSEC test support itself: nsd serving ldns-signed zones, unbound validating them. What a
 * DANE client would see (AD bit, rcode, data) for each kind of zone is the verdict.
 */

const hash = (c: string): string => c.repeat(64);

function zones(tlsa: string, mx1 = '127.0.0.2'): ZoneSpec[] {
  return [
    {
      origin: 'dane.test',
      security: 'anchored',
      records: [
        '@ 60 IN MX 10 mx1',
        `mx1 60 IN A ${mx1}`,
        `_25._tcp.mx1 1 IN TLSA 3 1 1 ${tlsa}`,
        'mxbogus 60 IN A 127.0.0.3',
        `_25._tcp.mxbogus 1 IN TLSA 3 1 1 ${hash('B')}`,
      ],
      tamper: [{ name: '_25._tcp.mxbogus.dane.test', type: 'TLSA' }],
    },
    {
      origin: 'plain.test',
      security: 'unsigned',
      records: ['@ 60 IN MX 10 mx', 'mx 60 IN A 127.0.0.4', `_25._tcp.mx 1 IN TLSA 3 1 1 ${hash('C')}`],
    },
    { origin: 'broken.test', security: 'wrong-anchor', records: ['@ 60 IN MX 10 mx', 'mx 60 IN A 127.0.0.5'] },
  ];
}

const ad = (r: DnsResponse): boolean => ((r.flags ?? 0) & dnsPacket.AUTHENTIC_DATA) !== 0;

function addresses(r: DnsResponse): string[] {
  return (r.answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data] : []));
}

function tlsaHex(r: DnsResponse): string[] {
  return (r.answers ?? []).flatMap((a) => (a.type === 'TLSA' ? [a.data.certificate.toString('hex').toUpperCase()] : []));
}

describe('DNSSEC test support: nsd + ldns-signzone + validating unbound', { skip: dnssecMissing() }, () => {
  let dns: DnssecDns;
  const q = (name: string, type: dnsPacket.RecordType): Promise<DnsResponse> => queryDns(dns.resolver, name, type);
  const why = (): string => dns.output();

  before(async () => {
    dns = await startDnssec(zones(hash('A')));
  });
  after(async () => {
    await dns?.stop();
  });

  test('anchored zone: A, MX and TLSA answers are NOERROR with AD', async () => {
    const a = await q('mx1.dane.test', 'A');
    assert.equal(a.rcode, 'NOERROR', why());
    assert.ok(ad(a), why());
    assert.deepEqual(addresses(a), ['127.0.0.2']);
    const mx = await q('dane.test', 'MX');
    assert.equal(mx.rcode, 'NOERROR', why());
    assert.ok(ad(mx), why());
    assert.deepEqual(
      mx.answers?.flatMap((x) => (x.type === 'MX' ? [x.data.exchange] : [])),
      ['mx1.dane.test'],
    );
    const tlsa = await q('_25._tcp.mx1.dane.test', 'TLSA');
    assert.equal(tlsa.rcode, 'NOERROR', why());
    assert.ok(ad(tlsa), why());
    assert.deepEqual(tlsaHex(tlsa), [hash('A')]);
  });

  test('anchored zone: NODATA and NXDOMAIN are authenticated too', async () => {
    const nodata = await q('mx1.dane.test', 'TLSA');
    assert.equal(nodata.rcode, 'NOERROR', why());
    assert.equal(nodata.answers?.length, 0);
    assert.ok(ad(nodata), why());
    const nx = await q('_25._tcp.nothere.dane.test', 'TLSA');
    assert.equal(nx.rcode, 'NXDOMAIN', why());
    assert.ok(ad(nx), why());
  });

  test('unsigned zone: answers are NOERROR without AD', async () => {
    for (const [name, type] of [
      ['plain.test', 'MX'],
      ['_25._tcp.mx.plain.test', 'TLSA'],
    ] as const) {
      const r = await q(name, type);
      assert.equal(r.rcode, 'NOERROR', why());
      assert.equal(r.answers?.length, 1, `${name} ${type}`);
      assert.ok(!ad(r), `${name} ${type} has AD`);
    }
  });

  test('wrong-anchor zone: every answer is SERVFAIL', async () => {
    for (const [name, type] of [
      ['broken.test', 'MX'],
      ['mx.broken.test', 'A'],
    ] as const) {
      assert.equal((await q(name, type)).rcode, 'SERVFAIL', `${name} ${type}\n${why()}`);
    }
  });

  test('tampered RRSIG: that TLSA RRset is SERVFAIL, the rest of the zone still validates', async () => {
    assert.equal((await q('_25._tcp.mxbogus.dane.test', 'TLSA')).rcode, 'SERVFAIL', why());
    const a = await q('mxbogus.dane.test', 'A');
    assert.equal(a.rcode, 'NOERROR', why());
    assert.ok(ad(a), why());
    const mx = await q('dane.test', 'MX');
    assert.ok(ad(mx), why());
  });

  test('update(): changed records are served, authenticated, as soon as it resolves', async () => {
    // Both in unbound's cache now; the A record for another 60 s.
    assert.deepEqual(tlsaHex(await q('_25._tcp.mx1.dane.test', 'TLSA')), [hash('A')]);
    assert.deepEqual(addresses(await q('mx1.dane.test', 'A')), ['127.0.0.2']);
    await dns.update(zones(hash('D'), '127.0.0.9'));
    const tlsa = await q('_25._tcp.mx1.dane.test', 'TLSA');
    assert.equal(tlsa.rcode, 'NOERROR', why());
    assert.ok(ad(tlsa), why());
    assert.deepEqual(tlsaHex(tlsa), [hash('D')]);
    const a = await q('mx1.dane.test', 'A');
    assert.ok(ad(a), why());
    assert.deepEqual(addresses(a), ['127.0.0.9']);
    // Same keys, so every zone keeps its verdict.
    assert.equal((await q('_25._tcp.mxbogus.dane.test', 'TLSA')).rcode, 'SERVFAIL', why());
    assert.equal((await q('broken.test', 'MX')).rcode, 'SERVFAIL', why());
    assert.ok(!ad(await q('plain.test', 'MX')));
  });
});
