import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryTicketStore } from '../../src/resumption/memory-store.js';
import { ResumptionCache } from '../../src/resumption/policy.js';
import type { TlsTarget } from '../../src/upstream/tls-target.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { Dialer } from '../support/dial.js';
import { missing } from '../support/interop.js';
import { startSServer, type SServer } from '../support/servers.js';

/**
 * The embedded store's memory bound, seen from the servers: with room for two destinations, the
 * least recently used one loses its tickets (its server then sees a full handshake) and the
 * recently used ones keep resuming. (The store contract in ticket-stores.test.ts covers the verbs.)
 */
describe('memory store: least recently used destinations are evicted', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  const servers: SServer[] = [];
  before(async () => {
    cert = makeCert(['localhost']);
    for (let i = 0; i < 3; i++) servers.push(await startSServer('tls13', cert));
  });
  after(async () => {
    for (const s of servers) await s.stop();
  });

  test('maxDestinations 2, three servers: the bound holds and the evicted one starts over', async () => {
    const store = new MemoryTicketStore(2);
    const dialer = new Dialer(new ResumptionCache(store, { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' }));
    const [a, b, c] = servers.map((s): TlsTarget => ({
      host: s.host,
      port: s.port,
      servername: 'localhost',
      ca: cert.cert,
      verify: 'name',
    }));
    const verdict = async (t: TlsTarget): Promise<string | undefined> => {
      const r = await dialer.get(t);
      assert.ok((await store.size()).destinations <= 2, 'never more than maxDestinations slots');
      return r.verdict;
    };
    try {
      assert.equal(await verdict(a), 'New');
      assert.equal(await verdict(b), 'New');
      assert.equal(await verdict(a), 'Reused'); // a is now the most recently used
      assert.equal(await verdict(c), 'New'); // room for c: b goes
      assert.equal((await store.size()).destinations, 2);
      assert.equal(await verdict(c), 'Reused');
      assert.equal(await verdict(a), 'Reused', 'a was used more recently than b: kept');
      assert.equal(await verdict(b), 'New', 'b was evicted: its server sees a full handshake');
    } finally {
      await dialer.close();
      await store.close();
    }
  });

  test('a thousand destinations through a bound of 100: the bound holds', async () => {
    const store = new MemoryTicketStore(100);
    const ticket = { session: Buffer.alloc(800, 1), hash: '000000000000', expiresAt: Date.now() + 60_000 };
    try {
      for (let i = 0; i < 1000; i++)
        await store.insertTls13Ticket(`dest-${i}`, { ...ticket, hash: String(i).padStart(12, '0') }, 8, Date.now());
      assert.deepEqual(await store.size(), { destinations: 100, tickets: 100 });
      assert.equal(await store.countTls13Tickets('dest-999', Date.now()), 1);
      assert.equal(await store.countTls13Tickets('dest-0', Date.now()), 0);
    } finally {
      await store.close();
    }
  });
});
