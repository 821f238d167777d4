import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { StoreBackend, StoredTicket } from '../../src/resumption/store.js';
import { until } from './until.js';

/**
 * The behaviour every store must have, written once and run against each backend (memory, Redis,
 * Sentinel, Cluster): tickets, then shared values. `open` gives a fresh, empty store bounded to
 * `maxDestinations`; each test closes it. Ticket time is injected: every verb takes `now`, so
 * expiry is tested without waiting; a value's TTL runs on the store's own clock (Redis PX).
 */
export interface ContractOptions {
  open(maxDestinations: number): Promise<StoreBackend>;
  skip?: string | undefined;
  /** Why the store keeps no `maxDestinations` bound of its own (a Redis Cluster: maxmemory does). */
  unbounded?: string;
}

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;

let serial = 0;
/** A ticket with a random binary session (every byte value, ':' and NUL included, can occur). */
function ticket(expiresAt = NOW + HOUR, hash?: string): StoredTicket {
  serial++;
  return {
    session: Buffer.concat([Buffer.from([0, 0x3a, 0xff, serial & 0xff]), randomBytes(780)]),
    hash: hash ?? `h${String(serial).padStart(11, '0')}`,
    expiresAt,
  };
}

export function storeContract(name: string, opts: ContractOptions): void {
  const it = (title: string, body: (store: StoreBackend) => Promise<void>, maxDestinations = 100, skip = opts.skip): void => {
    test(`${name}: ${title}`, { skip }, async () => {
      const store = await opts.open(maxDestinations);
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });
  };

  it('an unknown destination holds nothing', async (s) => {
    assert.deepEqual(await s.takeTls13Ticket('k', NOW), { expired: 0 });
    assert.equal(await s.lastSpentTls13Ticket('k', NOW), undefined);
    assert.equal(await s.countTls13Tickets('k', NOW), 0);
    assert.equal(await s.tls12Session('k', NOW), undefined);
    assert.deepEqual(await s.facts('k'), { recentVersions: '', refusesReuse: false });
    assert.deepEqual(await s.size(), { destinations: 0, tickets: 0 });
  });

  it('tickets are taken newest first, each once, session bytes intact', async (s) => {
    const [a, b, c] = [ticket(), ticket(), ticket()];
    for (const t of [a, b, c]) await s.insertTls13Ticket('k', t, 8, NOW);
    assert.equal(await s.countTls13Tickets('k', NOW), 3);
    for (const want of [c, b, a]) {
      const got = await s.takeTls13Ticket('k', NOW);
      assert.deepEqual(got, { ticket: want, expired: 0 });
    }
    assert.deepEqual(await s.takeTls13Ticket('k', NOW), { expired: 0 });
    assert.equal(await s.countTls13Tickets('k', NOW), 0);
  });

  it('the list is capped: the oldest go', async (s) => {
    const all = [ticket(), ticket(), ticket(), ticket(), ticket()];
    const kept: number[] = [];
    for (const t of all) kept.push(await s.insertTls13Ticket('k', t, 3, NOW));
    assert.deepEqual(kept, [1, 2, 3, 3, 3]);
    assert.equal(await s.countTls13Tickets('k', NOW), 3);
    const taken = [];
    for (let i = 0; i < 4; i++) taken.push((await s.takeTls13Ticket('k', NOW)).ticket?.hash);
    assert.deepEqual(taken, [all[4].hash, all[3].hash, all[2].hash, undefined]);
  });

  it('a ticket inserted twice is kept once', async (s) => {
    const a = ticket();
    await s.insertTls13Ticket('k', a, 8, NOW);
    await s.insertTls13Ticket('k', ticket(), 8, NOW);
    assert.equal(await s.insertTls13Ticket('k', { ...a }, 8, NOW), 2);
    assert.equal((await s.takeTls13Ticket('k', NOW)).ticket?.hash, a.hash);
    assert.notEqual((await s.takeTls13Ticket('k', NOW)).ticket?.hash, a.hash);
  });

  it('expired tickets are never offered; take reports how many it dropped', async (s) => {
    const long = ticket(NOW + 10 * HOUR);
    const short1 = ticket(NOW + HOUR);
    const short2 = ticket(NOW + HOUR);
    for (const t of [long, short1, short2]) await s.insertTls13Ticket('k', t, 8, NOW);
    const later = NOW + 2 * HOUR;
    assert.equal(await s.countTls13Tickets('k', later), 1);
    assert.deepEqual(await s.takeTls13Ticket('k', later), { ticket: long, expired: 2 });
    assert.deepEqual(await s.takeTls13Ticket('k', later), { expired: 0 });

    // Only expired ones left: "expired", not "empty".
    await s.insertTls13Ticket('j', ticket(NOW + HOUR), 8, NOW);
    assert.deepEqual(await s.takeTls13Ticket('j', NOW + HOUR), { expired: 1 });
  });

  it('an insert drops expired tickets already in the list', async (s) => {
    await s.insertTls13Ticket('k', ticket(NOW + HOUR), 8, NOW);
    await s.insertTls13Ticket('k', ticket(NOW + HOUR), 8, NOW);
    assert.equal(await s.insertTls13Ticket('k', ticket(NOW + 10 * HOUR), 8, NOW + 2 * HOUR), 1);
  });

  it('concurrent takes never return the same ticket', async (s) => {
    const inserted = [ticket(), ticket(), ticket(), ticket(), ticket()];
    for (const t of inserted) await s.insertTls13Ticket('k', t, 8, NOW);
    const results = await Promise.all(Array.from({ length: 12 }, () => s.takeTls13Ticket('k', NOW)));
    const hashes = results.map((r) => r.ticket?.hash).filter((h): h is string => h !== undefined);
    assert.equal(hashes.length, 5);
    assert.deepEqual([...hashes].sort(), inserted.map((t) => t.hash).sort());
  });

  it('the last spent ticket is remembered until it expires', async (s) => {
    const a = ticket(NOW + HOUR);
    const b = ticket(NOW + 2 * HOUR);
    await s.insertTls13Ticket('k', a, 8, NOW);
    await s.insertTls13Ticket('k', b, 8, NOW);
    await s.takeTls13Ticket('k', NOW);
    assert.deepEqual(await s.lastSpentTls13Ticket('k', NOW), b);
    await s.takeTls13Ticket('k', NOW);
    assert.deepEqual(await s.lastSpentTls13Ticket('k', NOW), a);
    assert.equal(await s.lastSpentTls13Ticket('k', NOW + HOUR), undefined);
    assert.equal(await s.lastSpentTls13Ticket('other', NOW), undefined);
  });

  it('the TLS 1.2 session is multi-use, replaced, removed, and dropped once expired', async (s) => {
    const first = ticket(NOW + HOUR);
    await s.setTls12Session('k', first);
    assert.deepEqual(await s.tls12Session('k', NOW), first);
    assert.deepEqual(await s.tls12Session('k', NOW), first);
    const second = ticket(NOW + HOUR);
    await s.setTls12Session('k', second);
    assert.deepEqual(await s.tls12Session('k', NOW), second);
    await s.removeTls12Session('k');
    assert.equal(await s.tls12Session('k', NOW), undefined);

    await s.setTls12Session('k', ticket(NOW + HOUR));
    assert.equal(await s.tls12Session('k', NOW + HOUR), undefined);
    assert.equal(await s.tls12Session('k', NOW), undefined, 'an expired session is dropped, not kept');
    // The TLS 1.2 slot and the TLS 1.3 list are separate.
    assert.equal(await s.countTls13Tickets('k', NOW), 0);
  });

  it('facts: the last 8 versions, and a sticky refusal of reuse', async (s) => {
    await s.learn('k', 'TLSv1.3', false);
    await s.learn('k', 'TLSv1.2', false);
    assert.deepEqual(await s.facts('k'), { recentVersions: '32', refusesReuse: false });
    for (let i = 0; i < 8; i++) await s.learn('k', i % 2 ? 'TLSv1.2' : 'TLSv1.3', false);
    assert.equal((await s.facts('k')).recentVersions, '32323232');
    await s.learn('k', undefined, true);
    await s.learn('k', 'TLSv1.3', false);
    assert.deepEqual(await s.facts('k'), { recentVersions: '23232323', refusesReuse: true });
    assert.deepEqual(await s.facts('other'), { recentVersions: '', refusesReuse: false });
  });

  it('destinations are separate, and size counts them', async (s) => {
    await s.insertTls13Ticket('a', ticket(), 8, NOW);
    await s.insertTls13Ticket('a', ticket(), 8, NOW);
    await s.insertTls13Ticket('b', ticket(), 8, NOW);
    assert.equal(await s.countTls13Tickets('a', NOW), 2);
    assert.equal(await s.countTls13Tickets('b', NOW), 1);
    assert.deepEqual(await s.size(), { destinations: 2, tickets: 3 });
  });

  it(
    'beyond maxDestinations the least recently used destination goes',
    async (s) => {
      await s.insertTls13Ticket('a', ticket(), 8, NOW);
      await s.insertTls13Ticket('b', ticket(), 8, NOW);
      await s.insertTls13Ticket('a', ticket(), 8, NOW); // a is now more recent than b
      await s.insertTls13Ticket('c', ticket(), 8, NOW);
      assert.equal(await s.countTls13Tickets('b', NOW), 0, 'b was least recently used');
      assert.equal(await s.countTls13Tickets('a', NOW), 2);
      assert.equal(await s.countTls13Tickets('c', NOW), 1);
      assert.equal((await s.size()).destinations, 2);
    },
    2,
    opts.skip ?? opts.unbounded,
  );

  it('a value reads back whole, an overwrite replaces it, an unknown name holds nothing', async (s) => {
    const policy = JSON.stringify({ mode: 'enforce', mx: ['*.example.net'], note: 'ünïcødé : \u0000' });
    assert.equal(await s.value('sts:example.net'), undefined);
    await s.setValue('sts:example.net', policy, HOUR);
    assert.equal(await s.value('sts:example.net'), policy);
    await s.setValue('sts:example.net', 'replaced', HOUR);
    assert.equal(await s.value('sts:example.net'), 'replaced');
    assert.equal(await s.value('sts:example.org'), undefined);
  });

  it('values are bounded like destinations: the least recently used (read or written) goes', async (s) => {
    await s.setValue('a', '1', HOUR);
    await s.setValue('b', '2', HOUR);
    // A read is a use: an MTA-STS policy in use is never the one a flood of new names pushes out.
    assert.equal(await s.value('a'), '1');
    await s.setValue('c', '3', HOUR);
    assert.deepEqual(await values(s, 'a', 'b', 'c'), ['1', undefined, '3']); // reads a, then c
    await s.setValue('d', '4', HOUR);
    assert.deepEqual(await values(s, 'a', 'c', 'd'), [undefined, '3', '4']);
  }, 2);

  it('a value is gone after its TTL, and its place is free again', async (s) => {
    await s.setValue('kept', 'k', HOUR);
    await s.setValue('brief', 'b', 30);
    await until(async () => (await s.value('brief')) === undefined, 10_000, 'the 30 ms value to expire');
    await s.setValue('next', 'n', HOUR);
    assert.deepEqual(await values(s, 'kept', 'brief', 'next'), ['k', undefined, 'n']);
  }, 2);

  it('values and destinations are counted apart; forgetting a destination keeps the values', async (s) => {
    for (const name of ['a', 'b']) await s.insertTls13Ticket(name, ticket(), 8, NOW);
    for (const name of ['a', 'v']) await s.setValue(name, name, HOUR);
    assert.deepEqual([await s.countTls13Tickets('a', NOW), await s.countTls13Tickets('b', NOW)], [1, 1]);
    assert.deepEqual(await s.size(), { destinations: 2, tickets: 2 });
    await s.forget('a');
    assert.deepEqual(await values(s, 'a', 'v'), ['a', 'v']);
    assert.deepEqual(await s.size(), { destinations: 1, tickets: 1 });
  }, 2);
}

async function values(s: StoreBackend, ...names: string[]): Promise<Array<string | undefined>> {
  return Promise.all(names.map((n) => s.value(n)));
}
