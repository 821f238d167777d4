import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryTicketStore } from '../../src/resumption/memory-store.js';
import { ResumptionCache } from '../../src/resumption/policy.js';
import type { StoredTicket } from '../../src/resumption/store.js';
import { dialTls } from '../../src/upstream/tls-dialer.js';
import { keyOf, type TlsTarget } from '../../src/upstream/tls-target.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { Dialer } from '../support/dial.js';
import { missing } from '../support/interop.js';
import { startSServer, type SServer } from '../support/servers.js';

/** The upstream dialer's own duties, against a real server. */

/** The embedded store, except that keeping a TLS 1.3 ticket fails (a shared store gone away). */
class StoreThatCannotKeep extends MemoryTicketStore {
  attempts = 0;
  override async insertTls13Ticket(_key: string, _ticket: StoredTicket, _cap: number, _now: number): Promise<number> {
    this.attempts++;
    throw new Error('store unavailable');
  }
}

describe('upstream dialer', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  let server: SServer;
  let target: TlsTarget;
  before(async () => {
    cert = makeCert(['localhost']);
    server = await startSServer('tls13', cert);
    target = { host: server.host, port: server.port, servername: 'localhost', ca: cert.cert, verify: 'name' };
  });
  after(async () => {
    await server?.stop();
  });

  test('every ticket of a handshake is stored, including those arriving after secureConnect', async () => {
    const cache = new ResumptionCache(new MemoryTicketStore(10), { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' });
    const dialer = new Dialer(cache);
    const r = await dialer.get(target);
    assert.equal(r.verdict, 'New');
    assert.equal(r.event.ticketsReceived, 2, 's_server issues 2 tickets per full handshake');
    assert.equal(r.event.ticketsLeft, 2);
    await dialer.close();
  });

  test('a store that fails to keep a ticket costs the ticket, never the connection or the process', async () => {
    const store = new StoreThatCannotKeep(10);
    const dialer = new Dialer(new ResumptionCache(store, { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' }));
    const first = await dialer.get(target);
    assert.equal(first.verdict, 'New');
    assert.equal(store.attempts, 2, 'both tickets were tried');
    assert.equal(first.event.ticketsReceived, 0);
    const second = await dialer.get(target);
    assert.equal(second.verdict, 'New', 'nothing kept, nothing offered');
    assert.equal(second.event.offered, 'none');
    await dialer.close();
  });

  test('a failed connection teaches the cache nothing: adaptive reuse survives an upstream restart', async () => {
    const own = await startSServer('tls13', cert);
    const t: TlsTarget = { host: own.host, port: own.port, servername: 'localhost', ca: cert.cert, verify: 'name' };
    const store = new MemoryTicketStore(10);
    const cache = new ResumptionCache(store, { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'adaptive' });
    const dialer = new Dialer(cache);
    assert.equal((await dialer.get(t)).verdict, 'New');
    const key = keyOf(t);
    while ((await store.takeTls13Ticket(key.id, Date.now())).ticket) {
      // spend the fresh tickets so that the next offer is a re-offer
    }
    await own.stop(); // the upstream goes away: the re-offered ticket meets a refused connect
    await assert.rejects(dialTls(t, dialer.ctx), /ECONNREFUSED/);
    assert.equal((await store.facts(key.id)).refusesReuse, false, 'a refused connect is not a refused ticket');
    await dialer.close();
  });

  test('a stored session OpenSSL cannot decode costs a full handshake, never the connection', async () => {
    const store = new MemoryTicketStore(10);
    const cache = new ResumptionCache(store, { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' });
    // What a corrupt shared-store entry looks like to the dialer: bytes that are no DER session.
    await store.insertTls13Ticket(
      keyOf(target).id,
      { session: Buffer.from('not a session'), hash: 'c0ffeec0ffee', expiresAt: Date.now() + 60_000 },
      8,
      Date.now(),
    );
    const dialer = new Dialer(cache);
    const r = await dialer.get(target);
    assert.equal(r.verdict, 'New', 'the server completed a full handshake');
    assert.equal(r.event.offered, 'tls13-ticket');
    assert.equal(r.event.fullCause, 'refused', 'the audit line says the offer did not resume');
    assert.equal(r.event.ticketsReceived, 2, 'and the fresh tickets were kept');
    await dialer.close();
  });
});
