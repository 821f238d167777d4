import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuditLog } from '../../../src/audit/audit-log.js';
import type { CacheKey } from '../../../src/resumption/cache-key.js';
import { MemoryTicketStore } from '../../../src/resumption/memory-store.js';
import { ResumptionCache } from '../../../src/resumption/policy.js';
import { CacheService } from '../../../src/workers/cache-service.js';

/**
 * The primary's side of a worker's channel over a real policy and memory store: offers to a
 * version-mixed destination leave one at a time, each once the worker has connected for the one
 * before (its hand-out), and nothing a worker fails to report holds up the next.
 */

const key: CacheKey = { id: 'mixed', short: 'mixed', destination: 'lb.example:443' };
const options = { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' as const };

async function mixedService(store = new MemoryTicketStore(100)): Promise<CacheService> {
  // Both versions seen: the destination is tracked, and each offer takes a place in its order.
  await store.learn(key.id, 'TLSv1.2', false);
  await store.learn(key.id, 'TLSv1.3', false);
  const cache = new ResumptionCache(store, options);
  return new CacheService({ cache: () => cache, store: { values: store, health: store }, audit: new AuditLog() });
}

/** Whether `p` has settled once every queued callback ran (a memory store answers within the turn). */
async function settledNow(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('workers: the cache service', () => {
  test('the next offer to a mixed destination waits for the worker to hand the one before out', async () => {
    const methods = (await mixedService()).methods();
    const { offer: first } = await methods.offer(key);
    assert.ok(first.placeId !== undefined, 'a mixed destination gives the offer a place');
    const second = Promise.resolve(methods.offer(key));
    assert.equal(await settledNow(second), false, 'held until the first is handed out');
    void methods.handedOut(first.placeId);
    assert.ok((await second).offer.placeId !== undefined);
  });

  test('an outcome or an abandon hands out a place whose note never came', async () => {
    const methods = (await mixedService()).methods();
    const { offer: first } = await methods.offer(key);
    const second = Promise.resolve(methods.offer(key));
    await methods.outcome(key, first, { resumed: false, version: 'TLSv1.3' });
    const { offer: next } = await second;
    const third = Promise.resolve(methods.offer(key));
    void methods.abandoned(next.placeId!, true);
    assert.equal(await settledNow(third), true);
  });

  test('a failed offer holds up nothing; a gone worker releases its places and any answered after', async () => {
    const store = new MemoryTicketStore(100);
    const service = await mixedService(store);
    const methods = service.methods();
    const take = store.takeTls13Ticket.bind(store);
    store.takeTls13Ticket = () => Promise.reject(new Error('store away'));
    await assert.rejects(Promise.resolve(methods.offer(key)), /store away/);
    store.takeTls13Ticket = take;
    const after = Promise.resolve(methods.offer(key));
    assert.equal(await settledNow(after), true, 'the failed offer handed its place out');

    const pending = Promise.resolve(methods.offer(key)); // waits for `after`'s hand-out
    service.releaseAll(); // the worker ended: `after` is released and handed out
    const { offer: late } = await pending;
    assert.equal(late.placeId, undefined, 'answered after the worker ended: its place is closed, not kept');
    assert.equal(await settledNow(Promise.resolve(methods.offer(key))), true);
  });
});
