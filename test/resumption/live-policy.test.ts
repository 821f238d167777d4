import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import type { CacheKey } from '../../src/resumption/cache-key.js';
import { MemoryTicketStore } from '../../src/resumption/memory-store.js';
import { ResumptionCache, type PolicyOptions } from '../../src/resumption/policy.js';
import { parseSession } from '../../src/resumption/session-der.js';
import { unwrapSession } from '../../src/resumption/session-envelope.js';
import { ticketHash } from '../../src/resumption/ticket-hash.js';
import { keyOf, type TlsTarget } from '../../src/upstream/tls-target.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { Dialer } from '../support/dial.js';
import { missing } from '../support/interop.js';
import { getTls, startNodeTlsServer, startSServer, verdictPlain, type SServer, type SServerMode } from '../support/servers.js';
import { isHandshake, startTunnelService } from '../support/tunnel-service.js';

/**
 * The resumption policy with sessions real servers issued: order, cap, expiry (injected clock),
 * TLS 1.2 multi-use, take-before-offer under concurrency, and the reuse policies judged by what
 * the servers said.
 */

const skip = missing('openssl');
const KEY: CacheKey = keyOf({ host: '127.0.0.1', port: 1, servername: 'localhost', verify: 'name' });

function policy(opts: Partial<PolicyOptions> = {}, clock?: () => number, store = new MemoryTicketStore(100)): ResumptionCache {
  return new ResumptionCache(store, { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never', ...opts }, clock);
}

const hashOf = (der: Buffer): string => {
  const info = parseSession(der);
  return ticketHash(info.ticket && info.ticket.length > 0 ? info.ticket : info.sessionId);
};

/** Re-encodes a session's DER SEQUENCE without its context-tagged field [n]; Node's envelope, if any, is kept. */
function withoutField(session: Buffer, n: number): Buffer {
  const der = unwrapSession(session).der;
  const envelope = session.subarray(0, session.length - der.length);
  const tlv = (buf: Buffer, at: number): { start: number; end: number; body: number } => {
    let len = buf[at + 1];
    let body = at + 2;
    if (len & 0x80) {
      const k = len & 0x7f;
      len = 0;
      for (let i = 0; i < k; i++) len = len * 256 + buf[body + i];
      body += k;
    }
    return { start: at, end: body + len, body };
  };
  const outer = tlv(der, 0);
  const parts: Buffer[] = [];
  for (let at = outer.body; at < outer.end;) {
    const el = tlv(der, at);
    if (der[at] !== (0xa0 | n)) parts.push(der.subarray(el.start, el.end));
    at = el.end;
  }
  const content = Buffer.concat(parts);
  const len =
    content.length < 0x80
      ? Buffer.from([content.length])
      : content.length < 0x100
        ? Buffer.from([0x81, content.length])
        : Buffer.from([0x82, content.length >> 8, content.length & 0xff]);
  return Buffer.concat([envelope, Buffer.from([0x30]), len, content]);
}

describe('resumption policy with real sessions', { skip }, () => {
  let cert: CertPair;
  const servers = new Map<SServerMode, SServer>();
  const server = async (mode: SServerMode): Promise<SServer> => {
    let s = servers.get(mode);
    if (!s) {
      s = await startSServer(mode, cert);
      servers.set(mode, s);
    }
    return s;
  };
  /** Full handshakes straight to the server; every session it handed out, in arrival order. */
  const fullHandshakes = async (mode: SServerMode, n: number): Promise<Buffer[]> => {
    const s = await server(mode);
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const got = await getTls({ host: s.host, port: s.port, servername: 'localhost', ca: cert.cert });
      assert.equal(got.resumed, false);
      out.push(...got.sessions);
    }
    return out;
  };
  const target = (s: { host: string; port: number }): TlsTarget => ({
    host: s.host,
    port: s.port,
    servername: 'localhost',
    ca: cert.cert,
    verify: 'name',
  });

  before(() => {
    cert = makeCert(['localhost']);
  });

  test('a TLS 1.3 ticket whose lifetime is 0 is discarded, never stored (RFC 8446 4.6.1)', async () => {
    const [der] = await fullHandshakes('tls13', 1);
    assert.ok((parseSession(der).lifetimeHint ?? 0) > 0, 'a real ticket carries its lifetime');
    const zero = withoutField(der, 9); // OpenSSL writes a zero lifetime by leaving [9] out
    assert.equal(parseSession(zero).lifetimeHint, undefined);
    const cache = policy();
    assert.equal((await cache.received(KEY, zero)).kind, 'not-resumable');
    assert.equal(await cache.ticketsLeft(KEY), 0);
    assert.equal((await cache.received(KEY, der)).kind, 'stored', 'the same ticket with its lifetime is kept');
    assert.equal(await cache.ticketsLeft(KEY), 1);
  });
  after(async () => {
    for (const s of servers.values()) await s.stop();
  });

  test('TLS 1.3 tickets: newest first, capped, the oldest trimmed, each offered once', async () => {
    const ders = await fullHandshakes('tls13', 3); // 6 tickets
    assert.equal(ders.length, 6);
    const cache = policy({ ticketsPerDestination: 4 });
    for (const der of ders) assert.equal((await cache.received(KEY, der)).kind, 'stored');
    assert.equal(await cache.ticketsLeft(KEY), 4);
    const offered: string[] = [];
    for (let i = 0; i < 4; i++) {
      const o = await cache.offer(KEY);
      assert.equal(o.kind, 'tls13-ticket');
      assert.equal(o.reoffered, false);
      offered.push(o.hash as string);
    }
    assert.deepEqual(offered, [ders[5], ders[4], ders[3], ders[2]].map(hashOf));
    const empty = await cache.offer(KEY);
    assert.equal(empty.kind, 'none');
    assert.equal(empty.emptyBecause, 'empty');
  });

  test('expiry from the server lifetime hint, with an injected clock', async () => {
    const node = await startNodeTlsServer({ cert, sessionTimeout: 100 });
    try {
      const got = await getTls({ host: node.host, port: node.port, servername: 'localhost', ca: cert.cert });
      const issued = parseSession(got.sessions[0]).issuedAt * 1000;
      let now = issued;
      const cache = policy({ maxAgeSeconds: 3600 }, () => now);
      for (const der of got.sessions) await cache.received(KEY, der);
      now = issued + 99_000;
      assert.equal((await cache.offer(KEY)).kind, 'tls13-ticket', 'fresh at 99 s of 100');
      now = issued + 100_000;
      const late = await cache.offer(KEY);
      assert.equal(late.kind, 'none', 'expired at 100 s');
      assert.equal(late.emptyBecause, 'expired');
      assert.equal(await cache.outcome(KEY, late, { resumed: false, version: 'TLSv1.3' }), 'expired');
      // A session that is already past its lifetime is not stored at all.
      now = issued + 200_000;
      assert.equal((await cache.received(KEY, got.sessions[0])).kind, 'not-resumable');
      assert.equal(await cache.ticketsLeft(KEY), 0);
    } finally {
      await node.stop();
    }
  });

  test('maxAgeSeconds caps a longer server hint (s_server hints 7200 s)', async () => {
    const ders = await fullHandshakes('tls13', 1);
    const info = parseSession(ders[0]);
    assert.equal(info.lifetimeHint, 7200);
    let now = info.issuedAt * 1000;
    const cache = policy({ maxAgeSeconds: 60 }, () => now);
    for (const der of ders) await cache.received(KEY, der);
    now += 59_000;
    assert.equal((await cache.offer(KEY)).kind, 'tls13-ticket');
    now += 2_000;
    assert.equal((await cache.offer(KEY)).kind, 'none');
    assert.equal(await cache.ticketsLeft(KEY), 0);
  });

  test('TLS 1.2 session: offered again and again, replaced by a newer one', async () => {
    for (const mode of ['tls12-tickets', 'tls12-session-ids'] as const) {
      const [first, second] = await fullHandshakes(mode, 2);
      assert.notEqual(hashOf(first), hashOf(second));
      const cache = policy();
      await cache.received(KEY, first);
      for (let i = 0; i < 3; i++) {
        const o = await cache.offer(KEY);
        assert.equal(o.kind, 'tls12-session', mode);
        assert.equal(o.hash, hashOf(first));
      }
      await cache.received(KEY, second);
      assert.equal((await cache.offer(KEY)).hash, hashOf(second));
    }
  });

  test('take before offer: 8 concurrent offers never get the same ticket', async () => {
    const ders = await fullHandshakes('tls13', 4);
    const cache = policy();
    for (const der of ders) await cache.received(KEY, der);
    const offers = await Promise.all(Array.from({ length: 10 }, () => cache.offer(KEY)));
    const hashes = offers.filter((o) => o.kind === 'tls13-ticket').map((o) => o.hash);
    assert.equal(hashes.length, 8);
    assert.equal(new Set(hashes).size, 8);
    assert.equal(offers.filter((o) => o.kind === 'none').length, 2);
  });

  test('8 concurrent connections through a tunnel never offer the same ticket (audit offeredHash)', async () => {
    const s = await server('tls13-anti-replay');
    const h = await startTunnelService({ upstream: { host: s.host, port: s.port, servername: 'localhost', ca: cert.certFile } });
    try {
      const verdicts: string[] = [];
      for (let round = 0; round < 3; round++) {
        const got = await Promise.all(Array.from({ length: 8 }, () => verdictPlain(h.port)));
        verdicts.push(...got.map((v) => v.verdict));
      }
      const hs = (await h.waitFor(isHandshake, 24)) as HandshakeEvent[];
      const offered = hs.map((e) => e.offeredHash).filter((x): x is string => x !== undefined);
      assert.equal(new Set(offered).size, offered.length, 'no ticket offered twice');
      // The refusing server is the judge: every offered ticket was fresh, so every offer resumed.
      const resumedByAudit = hs.filter((e) => e.resumed).length;
      assert.equal(resumedByAudit, verdicts.filter((v) => v === 'Reused').length);
      assert.equal(hs.filter((e) => e.offered !== 'none' && !e.resumed).length, 0, 'no offered ticket refused');
      assert.ok(verdicts.slice(8).filter((v) => v === 'Reused').length >= 15, `rounds 2-3: ${verdicts.slice(8).join(',')}`);
    } finally {
      await h.stop();
    }
  });

  test('never: a server with 2 tickets and none on resumption resumes 2 of 3, no hash offered twice', async () => {
    const node = await startNodeTlsServer({ cert });
    const h = await startTunnelService({ upstream: { host: node.host, port: node.port, servername: 'localhost', ca: cert.certFile } });
    try {
      const verdicts: string[] = [];
      for (let i = 0; i < 9; i++) verdicts.push((await verdictPlain(h.port)).verdict);
      assert.deepEqual(verdicts, ['New', 'Reused', 'Reused', 'New', 'Reused', 'Reused', 'New', 'Reused', 'Reused']);
      assert.equal(node.stats.resumed, 6);
      const hs = (await h.waitFor(isHandshake, 9)) as HandshakeEvent[];
      const offered = hs.map((e) => e.offeredHash).filter((x) => x !== undefined);
      assert.equal(offered.length, 6);
      assert.equal(new Set(offered).size, 6);
      assert.ok(hs.every((e) => !e.reoffered));
    } finally {
      await h.stop();
      await node.stop();
    }
  });

  test('adaptive: an empty list reoffers the newest spent ticket while the server accepts it', async () => {
    const node = await startNodeTlsServer({ cert });
    const h = await startTunnelService({
      upstream: { host: node.host, port: node.port, servername: 'localhost', ca: cert.certFile },
      cache: { reuse: 'adaptive' },
    });
    try {
      const verdicts: string[] = [];
      for (let i = 0; i < 6; i++) verdicts.push((await verdictPlain(h.port)).verdict);
      assert.deepEqual(verdicts, ['New', 'Reused', 'Reused', 'Reused', 'Reused', 'Reused']);
      const hs = (await h.waitFor(isHandshake, 6)) as HandshakeEvent[];
      assert.deepEqual(
        hs.map((e) => e.reoffered),
        [false, false, false, true, true, true],
      );
      // The reoffered one is the last ticket taken: the third connection's.
      assert.equal(hs[3].offeredHash, hs[2].offeredHash);
    } finally {
      await h.stop();
      await node.stop();
    }
  });

  test('adaptive: one refusal (s_server -max_early_data) and that destination never gets a reused ticket again', async () => {
    const s = await server('tls13-anti-replay');
    const store = new MemoryTicketStore(100);
    const cache = policy({ reuse: 'adaptive', ticketsPerDestination: 1 }, undefined, store);
    const dialer = new Dialer(cache);
    const t = target(s);
    const key = keyOf(t);
    const dialOnce = async (): Promise<HandshakeEvent> => (await dialer.get(t)).event;

    const first = await dialOnce();
    assert.equal(first.offered, 'none');
    assert.equal(await cache.ticketsLeft(key), 1);
    // Spend the ticket on the wire outside ticketbooth, as another client of the server would:
    // the server now knows it, and anti-replay will refuse it from here on.
    const spent = await cache.offer(key); // taken by a connection that then died before dialing
    const outside = await getTls({ host: s.host, port: s.port, servername: 'localhost', ca: cert.cert, session: spent.session });
    assert.equal(outside.resumed, true);

    const refused = await dialOnce();
    assert.equal(refused.offered, 'tls13-ticket');
    assert.equal(refused.reoffered, true);
    assert.equal(refused.offeredHash, spent.hash);
    assert.equal(refused.resumed, false);
    assert.equal(refused.fullCause, 'refused');
    assert.equal((await store.facts(key.id)).refusesReuse, true);

    await cache.offer(key); // empty the list again
    const after = await dialOnce();
    assert.equal(after.offered, 'none', 'no reuse after a refusal');
    assert.equal(after.reoffered, false);
    await dialer.close();
  });
});
