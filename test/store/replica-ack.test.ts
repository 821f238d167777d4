import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisTicketStore } from '../../src/resumption/redis-store.js';
import { missing } from '../support/interop.js';
import { waitForOutput } from '../support/redis-sentinel.js';
import { startRedisServer } from '../support/redis-server.js';

/**
 * `replicaAck` against a real primary and replica: a take the replica acknowledged is offered; once
 * the replica is gone, a take is not offered (its ticket is spent on the primary, never offered),
 * counted as a store error and said on stderr once, and the next takes leave the list alone while
 * takes pause.
 */
test(
  'replicaAck: offered once the replica holds the take; without a replica nothing is offered, counted, said once',
  { skip: missing('redis-server') },
  async () => {
    const primary = await startRedisServer(['--repl-diskless-sync-delay', '0']);
    const replica = await startRedisServer(['--replicaof', '127.0.0.1', String(primary.port)]);
    const said: string[] = [];
    const prefix = `tb-ack-${process.pid}:`;
    const raw = new Redis(primary.url);
    let store: RedisTicketStore | undefined;
    try {
      await waitForOutput(primary.process, /Synchronization with replica \S+ succeeded/, 1, 15_000);
      // Online is not yet acknowledging: just after its sync a replica can let a WAIT time out (seen:
      // offset 0, 600 ms). The rig is ready once a write of its own is acknowledged.
      await raw.set(`${prefix}ready`, '1');
      assert.equal(await raw.wait(1, 15_000), 1, 'the replica acknowledges writes');
      store = await RedisTicketStore.connect({
        url: primary.url,
        prefix,
        maxDestinations: 10,
        // 500 ms, the longest allowed: a loaded machine can hold a WAIT past the default 50 ms.
        replicaAck: { replicas: 1, timeoutMs: 500 },
        onStatus: (m) => said.push(m),
      });
      const now = Date.now();
      const ticket = (hash: string) => ({ session: randomBytes(300), hash, expiresAt: now + 3_600_000 });
      for (const h of ['t1', 't2', 't3']) await store.insertTls13Ticket('d', ticket(h), 8, now);
      assert.equal((await store.takeTls13Ticket('d', now)).ticket?.hash, 't3', 'acknowledged by the replica: offered');
      assert.equal(store.errors, 0);

      await replica.stop();
      await waitForOutput(primary.process, /Connection with replica .* lost/, 1, 15_000);
      assert.equal((await store.takeTls13Ticket('d', now)).ticket, undefined, 'no replica: not offered');
      assert.equal(await raw.llen(`${prefix}d:{d}:t13`), 1, 'the take ran on the primary: t2 is spent, not offered');
      assert.equal(store.errors, 1, 'counted in ticketbooth_store_errors_total');
      // Nor kept as the spent ticket adaptive reuse would offer again: a promoted replica still lists it.
      assert.equal(await raw.hexists(`${prefix}d:{d}`, 'spent'), 0, 'the unacknowledged take is not the spent ticket');
      assert.equal(await store.lastSpentTls13Ticket('d', now), undefined);
      // Paused: the next take does not even pop (t1 stays for when a replica is back).
      assert.equal((await store.takeTls13Ticket('d', now)).ticket, undefined);
      assert.equal(await raw.llen(`${prefix}d:{d}:t13`), 1);
      assert.deepEqual(
        said.filter((m) => m.includes('replica(s)')),
        [
          'redis store: 1 take(s) reached 0 of 1 replica(s) within 500 ms: their tickets were not offered (full handshakes instead; ' +
            'ticketbooth_store_errors_total), takes pause 1 s after each; said at most once a minute',
        ],
      );
    } finally {
      raw.disconnect();
      await store?.close();
      await replica.stop();
      await primary.stop();
    }
  },
);
