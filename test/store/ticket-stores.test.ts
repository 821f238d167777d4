import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryTicketStore } from '../../src/resumption/memory-store.js';
import { RedisTicketStore } from '../../src/resumption/redis-store.js';
import { Sealer } from '../../src/resumption/seal.js';
import { missing } from '../support/interop.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { storeContract } from '../support/store-contract.js';

/** The store contract against both stores, then what only the Redis store must do. */

storeContract('memory store', { open: async (max) => new MemoryTicketStore(max) });

const noRedis = missing('redis-server');
let redis: RedisServer | undefined;
let prefixes = 0;
const freshPrefix = (): string => `tb-test-${process.pid}-${++prefixes}:`;

before(async () => {
  if (!noRedis) redis = await startRedisServer();
});
after(async () => {
  await redis?.stop();
});

const openRedis = (max: number, prefix = freshPrefix(), onStatus?: (m: string) => void, sealer?: Sealer): Promise<RedisTicketStore> =>
  RedisTicketStore.connect({
    url: (redis as RedisServer).url,
    prefix,
    maxDestinations: max,
    onStatus: onStatus ?? (() => undefined),
    ...(sealer ? { sealer } : {}),
  });
const sealer = new Sealer([{ id: 'test-1', key: randomBytes(32) }], 'test-1');

storeContract('redis store', { skip: noRedis, open: (max) => openRedis(max) });
storeContract('redis store, sealed', { skip: noRedis, open: (max) => openRedis(max, freshPrefix(), undefined, sealer) });

const NOW = 1_800_000_000_000;
const ticket = (hash: string, expiresAt = NOW + 3_600_000) => ({ session: randomBytes(800), hash, expiresAt });

test('redis store: two instances sharing one Redis never take the same ticket', { skip: noRedis }, async () => {
  const prefix = freshPrefix();
  const [a, b] = [await openRedis(100, prefix), await openRedis(100, prefix)];
  try {
    const hashes = Array.from({ length: 8 }, (_, i) => `shared${i}`);
    for (const [i, h] of hashes.entries()) await (i % 2 ? a : b).insertTls13Ticket('k', ticket(h), 8, NOW);
    // A ticket inserted by one instance is visible to the other, newest first.
    assert.equal((await a.takeTls13Ticket('k', NOW)).ticket?.hash, 'shared7');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).takeTls13Ticket('k', NOW)));
    const taken = results.map((r) => r.ticket?.hash).filter((h) => h !== undefined);
    assert.equal(taken.length, 7);
    assert.equal(new Set(taken).size, 7, `a ticket was taken twice: ${taken.join(' ')}`);
    // The last spent ticket is shared too.
    assert.ok(await b.lastSpentTls13Ticket('k', NOW));
  } finally {
    await a.close();
    await b.close();
  }
});

test('redis store: every key expires within 7 days and the write refreshes it', { skip: noRedis }, async () => {
  const prefix = freshPrefix();
  const store = await openRedis(100, prefix);
  const raw = new Redis((redis as RedisServer).url);
  try {
    await store.insertTls13Ticket('k', ticket('ttl1'), 8, NOW);
    await store.setTls12Session('k', ticket('ttl2'));
    await store.learn('k', 'TLSv1.3', false);
    const keys = await raw.keys(`${prefix}*`);
    assert.deepEqual(keys.sort(), [`${prefix}d:{k}`, `${prefix}d:{k}:t13`, `${prefix}destinations`]);
    const sevenDays = 7 * 24 * 3600 * 1000;
    for (const key of [`${prefix}d:{k}`, `${prefix}d:{k}:t13`]) {
      await raw.pexpire(key, 1000);
    }
    await store.insertTls13Ticket('k', ticket('ttl3'), 8, NOW);
    for (const key of [`${prefix}d:{k}`, `${prefix}d:{k}:t13`]) {
      const ttl = await raw.pttl(key);
      assert.ok(ttl > sevenDays - 60_000 && ttl <= sevenDays, `${key} ttl ${ttl}`);
    }
    // Session bytes are stored in binary, not as text: an 800-byte session costs about 800 bytes.
    const entry = await raw.lindexBuffer(`${prefix}d:{k}:t13`, 0);
    assert.ok(entry && entry.length < 800 + 40, `entry is ${entry?.length} bytes`);
  } finally {
    raw.disconnect();
    await store.close();
  }
});

test('redis store: while Redis is away it holds nothing and fails nothing, then comes back', { skip: noRedis }, async () => {
  const own = await startRedisServer();
  const messages: string[] = [];
  let reconnected: () => void = () => undefined;
  const back = new Promise<void>((resolve) => (reconnected = resolve));
  const onStatus = (m: string): void => {
    messages.push(m);
    if (/reconnected/.test(m)) reconnected();
  };
  const store = await RedisTicketStore.connect({
    url: own.url,
    prefix: freshPrefix(),
    maxDestinations: 10,
    onStatus,
    commandTimeoutMs: 500,
  });
  let again: RedisServer | undefined;
  try {
    await store.insertTls13Ticket('k', ticket('away1'), 8, NOW);
    await own.stop();
    const started = Date.now();
    assert.deepEqual(await store.takeTls13Ticket('k', NOW), { expired: 0 });
    assert.equal(await store.insertTls13Ticket('k', ticket('away2'), 8, NOW), 0);
    assert.equal(await store.tls12Session('k', NOW), undefined);
    assert.deepEqual(await store.facts('k'), { recentVersions: '', refusesReuse: false });
    await store.learn('k', 'TLSv1.3', false);
    await store.setValue('v', 'x', 60_000);
    assert.equal(await store.value('v'), undefined);
    assert.ok(Date.now() - started < 5000, 'calls fail fast instead of queueing');
    assert.equal(messages.length, 1, `one report per outage: ${messages.join(' | ')}`);
    assert.match(messages[0], /redis store unavailable/);

    // A new (empty) Redis on the same port: the store reconnects by itself and works again.
    again = await startRedisServer([], own.port);
    await back;
    assert.equal(await store.insertTls13Ticket('k', ticket('back1'), 8, NOW), 1);
    assert.equal((await store.takeTls13Ticket('k', NOW)).ticket?.hash, 'back1');
  } finally {
    await store.close();
    await again?.stop();
  }
});

test('redis store: an unreachable URL fails the start with the URL (password hidden)', { skip: noRedis }, async () => {
  const probe = await startRedisServer();
  const url = `redis://user:s3cret@127.0.0.1:${probe.port}`;
  await probe.stop(); // now nothing listens there
  await assert.rejects(RedisTicketStore.connect({ url, prefix: 'x:', maxDestinations: 1 }), (err: Error) => {
    assert.match(err.message, /cannot reach Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1/);
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  });
});

test(
  'redis store, sealed: Redis holds no session byte; an entry moved to another destination is dropped, never offered',
  { skip: noRedis },
  async () => {
    const prefix = freshPrefix();
    const said: string[] = [];
    const store = await openRedis(100, prefix, (m) => said.push(m), sealer);
    const raw = new Redis((redis as RedisServer).url);
    try {
      const [a, b] = [ticket('sealed1'), ticket('sealed2')];
      await store.insertTls13Ticket('dest-a', a, 8, NOW);
      await store.setTls12Session('dest-a', b);
      for (const v of [await raw.lindexBuffer(`${prefix}d:{dest-a}:t13`, 0), await raw.hgetBuffer(`${prefix}d:{dest-a}`, 'tls12')]) {
        assert.ok(v, 'written');
        assert.equal(v.includes(a.session.subarray(100, 132)) || v.includes(b.session.subarray(100, 132)), false);
      }
      // Someone with write access moves dest-a's ticket to dest-b's list: it does not open there.
      await raw.lmove(`${prefix}d:{dest-a}:t13`, `${prefix}d:{dest-b}:t13`, 'LEFT', 'LEFT');
      assert.deepEqual(await store.takeTls13Ticket('dest-b', NOW), { expired: 0 });
      assert.equal(await raw.exists(`${prefix}d:{dest-b}:t13`), 0, 'dropped from the list');
      assert.equal(await store.lastSpentTls13Ticket('dest-b', NOW), undefined);
      assert.equal(store.dropped.unauthentic, 1);
      assert.equal(said.length, 1);
      assert.match(said[0], /dropped a session sealed under key "test-1" that fails authentication/);
      // A store without the key (or without seal) offers none of it either.
      await store.insertTls13Ticket('dest-c', ticket('sealed3'), 8, NOW);
      const other = await openRedis(100, prefix, () => undefined, new Sealer([{ id: 'test-2', key: randomBytes(32) }], 'test-2'));
      try {
        assert.deepEqual(await other.takeTls13Ticket('dest-c', NOW), { expired: 0 });
        assert.equal(await other.tls12Session('dest-a', NOW), undefined);
        assert.deepEqual(other.dropped, { 'unknown-key': 2, unauthentic: 0, unsealed: 0, sealed: 0 });
      } finally {
        await other.close();
      }
    } finally {
      raw.disconnect();
      await store.close();
    }
  },
);

test(
  'redis store, sealed: values share one hash tag and a set that lives as long as they do; a value opens under its own name only',
  { skip: noRedis },
  async () => {
    const prefix = freshPrefix();
    const said: string[] = [];
    const store = await openRedis(100, prefix, (m) => said.push(m), sealer);
    const raw = new Redis((redis as RedisServer).url);
    try {
      await store.setValue('sts:a.example', 'mode: enforce', 60_000);
      await store.setValue('sts:b.example', 'mode: testing', 10_000);
      const set = `${prefix}{v}`;
      assert.deepEqual((await raw.keys(`${prefix}*`)).sort(), [set, `${set}:sts:a.example`, `${set}:sts:b.example`]);
      const setTtl = await raw.pttl(set);
      assert.ok(setTtl > 50_000 && setTtl <= 60_000, `the set outlives its longest value: ${setTtl} ms`);
      assert.deepEqual(await raw.zrange(set, '0', '-1'), ['sts:a.example', 'sts:b.example'], 'least recently written first');
      const blob = await raw.getBuffer(`${set}:sts:a.example`);
      assert.ok(blob && !blob.includes('enforce'), 'sealed, not in the clear');
      // Someone with write access plants a's value under b's name: it does not open there.
      await raw.set(`${set}:sts:b.example`, blob);
      assert.equal(await store.value('sts:b.example'), undefined);
      assert.equal(await store.value('sts:a.example'), 'mode: enforce');
      assert.equal(store.dropped.unauthentic, 1);
      assert.match(said[0], /dropped the shared value sts:b\.example sealed under key "test-1" that fails authentication/);
    } finally {
      raw.disconnect();
      await store.close();
    }
  },
);

test(
  'redis store: a value under the layout before the values set is moved into it on its first read, TTL kept',
  { skip: noRedis },
  async () => {
    const prefix = freshPrefix();
    const store = await openRedis(100, prefix);
    const raw = new Redis((redis as RedisServer).url);
    try {
      // What a version before `PREFIX {v}` wrote: `PREFIX v:NAME`, the same encoding, its own expiry.
      await raw.set(`${prefix}v:sts:old.example`, 'mode: enforce', 'PX', 3_600_000);
      assert.equal(await store.value('sts:old.example'), 'mode: enforce', 'an upgrade forgets no cached policy');
      assert.equal(await raw.exists(`${prefix}v:sts:old.example`), 0, 'the old key is gone');
      const ttl = await raw.pttl(`${prefix}{v}:sts:old.example`);
      assert.ok(ttl > 3_500_000 && ttl <= 3_600_000, `moved with what was left of its TTL: ${ttl} ms`);
      assert.deepEqual(await raw.zrange(`${prefix}{v}`, '0', '-1'), ['sts:old.example'], 'and counted in the bound');
      assert.equal(await store.value('sts:none.example'), undefined);
    } finally {
      raw.disconnect();
      await store.close();
    }
  },
);
