import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { MemoryTicketStore } from '../../../src/resumption/memory-store.js';
import { ResumptionCache } from '../../../src/resumption/policy.js';
import { parseSession } from '../../../src/resumption/session-der.js';
import { keyOf } from '../../../src/upstream/tls-target.js';
import { RemoteResumption } from '../../../src/workers/cache-client.js';
import { CacheService } from '../../../src/workers/cache-service.js';
import { Channel, type Port } from '../../../src/workers/channel.js';
import type { PrimaryMethods, WorkerMethods } from '../../../src/workers/protocol.js';

/**
 * Workers' calls to the one ticket cache over an in-process channel (messages cloned as the
 * cluster channel does, each counted): single use across workers, the ticket count a connection's
 * audit line reads riding on the replies, the outcome as a note, and one message per turn.
 */

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'sessions');
const tls13 = [0, 1, 2, 3, 4, 5].map((i) => readFileSync(join(dir, `series-tls13-${i}.bin`)));
const issuedMs = Math.max(...tls13.map((b) => parseSession(b).issuedAt)) * 1000;
const KEY = keyOf({ host: '127.0.0.1', port: 1, servername: 'localhost', verify: 'name' });
const OPTIONS = { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' as const };

type Sent = { tb: string; method?: string; items?: Sent[] };

/** A worker's channel to a primary serving `cache`; `sent` lists what each side put on the wire. */
function worker(cache: ResumptionCache): { remote: RemoteResumption; toPrimary: Sent[]; toWorker: Sent[] } {
  const [ew, ep] = [new EventEmitter(), new EventEmitter()];
  const toPrimary: Sent[] = [];
  const toWorker: Sent[] = [];
  const port = (self: EventEmitter, other: EventEmitter, log: Sent[]): Port => ({
    send: (message, callback) =>
      setImmediate(() => {
        log.push(message as Sent);
        other.emit('message', structuredClone(message));
        callback(null);
      }),
    on: (event, listener) => self.on(event, listener),
    once: (event, listener) => self.once(event, listener),
  });
  const trouble = (what: string): never => assert.fail(what);
  const primary = new Channel<PrimaryMethods, WorkerMethods>(port(ep, ew, toWorker), 'worker 1', trouble);
  const store = {
    values: { value: async () => undefined, setValue: async () => undefined },
    health: { size: async () => ({ destinations: 0, tickets: 0 }), ping: async () => undefined, close: async () => undefined },
  };
  primary.serve(new CacheService({ cache: () => cache, store, audit: new AuditLog({}) }).methods());
  const toThePrimary = new Channel<WorkerMethods, PrimaryMethods>(port(ew, ep, toPrimary), 'the primary', trouble);
  return { remote: new RemoteResumption(toThePrimary, OPTIONS), toPrimary, toWorker };
}

const methods = (log: Sent[]): string[] => log.flatMap((m) => (m.items ?? [m]).map((x) => `${x.tb}${x.method ? ` ${x.method}` : ''}`));

describe('workers: the remote ticket cache', () => {
  test('two workers, one store: 10 concurrent offers never get the same ticket', async () => {
    const cache = new ResumptionCache(new MemoryTicketStore(100), OPTIONS, () => issuedMs);
    const [a, b] = [worker(cache), worker(cache)];
    for (const der of tls13) assert.equal((await a.remote.received(KEY, der)).kind, 'stored');
    const offers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).remote.offer(KEY)));
    const hashes = offers.filter((o) => o.kind === 'tls13-ticket').map((o) => o.hash);
    assert.equal(hashes.length, 6);
    assert.equal(new Set(hashes).size, 6);
  });

  test('ticketsLeft: the count the offer and received replies brought, asked apart only for a destination not seen', async () => {
    const cache = new ResumptionCache(new MemoryTicketStore(100), OPTIONS, () => issuedMs);
    const [a, b] = [worker(cache), worker(cache)];
    for (const der of tls13.slice(0, 3)) await a.remote.received(KEY, der);
    assert.equal(await a.remote.ticketsLeft(KEY), 3);
    await a.remote.offer(KEY);
    assert.equal(await a.remote.ticketsLeft(KEY), 2);
    assert.ok(!methods(a.toPrimary).includes('call ticketsLeft'), methods(a.toPrimary).join(', '));
    assert.equal(await b.remote.ticketsLeft(KEY), 2);
    assert.deepEqual(methods(b.toPrimary), ['call ticketsLeft']);
  });

  test('outcome is a note (no reply) whose cause is the primary’s; what one turn sends is one message', async () => {
    const cache = new ResumptionCache(new MemoryTicketStore(100), OPTIONS, () => issuedMs);
    const a = worker(cache);
    await a.remote.received(KEY, tls13[0]);
    const offer = await a.remote.offer(KEY);
    assert.equal(await a.remote.outcome(KEY, offer, { resumed: false, version: 'TLSv1.3' }), 'refused');
    const offers = await Promise.all([a.remote.offer(KEY), a.remote.offer(KEY), a.remote.offer(KEY)]);
    assert.deepEqual(
      offers.map((o) => o.kind),
      ['none', 'none', 'none'],
    );
    assert.deepEqual(methods(a.toPrimary), ['call received', 'call offer', 'note outcome', 'call offer', 'call offer', 'call offer']);
    // The outcome went before the three offers, in the same message; the three answers came back together.
    assert.equal(a.toPrimary.length, 3);
    assert.equal(a.toWorker.length, 3);
    assert.equal(a.toWorker.at(-1)?.items?.length, 3);
  });
});
