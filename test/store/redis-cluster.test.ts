import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Cluster } from 'ioredis';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { RedisTicketStore } from '../../src/resumption/redis-store.js';
import { Sealer } from '../../src/resumption/seal.js';
import { keyOf } from '../../src/upstream/tls-target.js';
import { targetFromConfig } from '../../src/upstream/target-from-config.js';
import { makeCert } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { waitForOutput } from '../support/redis-sentinel.js';
import { until } from '../support/until.js';
import { startSServer, verdictPlain, type SServer } from '../support/servers.js';
import { storeContract } from '../support/store-contract.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../support/tunnel-service.js';

/**
 * Redis Cluster: three primaries, each with a replica (`redis-server --cluster-enabled yes` ×6,
 * `redis-cli --cluster create --cluster-replicas 1`). The store contract runs against it (sealed),
 * then two instances resume through it against `openssl s_server -tls1_3 -max_early_data 16384
 * -www` (anti-replay: a ticket offered twice is refused), and the primary serving the
 * destination's slot is killed (-9) while clients keep connecting.
 */

const skip = missing('redis-server', 'redis-cli', 'openssl');
let cluster: RedisCluster;
let prefixes = 0;
const sealer = new Sealer([{ id: 'c1', key: randomBytes(32) }], 'c1');

before(async () => {
  if (!skip) cluster = await startRedisCluster({ primaries: 3, replicas: 1 });
});
after(async () => {
  await cluster?.stop();
});

storeContract('redis cluster store', {
  skip,
  unbounded: 'a cluster keeps no destinations set (it would span slots): maxmemory and the 7-day expiry bound it',
  open: (max) =>
    RedisTicketStore.connect({
      cluster: cluster.seeds.slice(0, 2),
      prefix: `tb-cluster-${process.pid}-${++prefixes}:`,
      maxDestinations: max,
      sealer,
      onStatus: () => undefined,
    }),
});

test('every key of a destination is in one slot; slots spread over the primaries', { skip }, async () => {
  const prefix = `tb-cluster-slots-${process.pid}:`;
  const store = await RedisTicketStore.connect({ cluster: cluster.seeds, prefix, maxDestinations: 100, sealer, onStatus: () => undefined });
  const raw = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0].port }]);
  try {
    const now = Date.now();
    const ids = Array.from({ length: 12 }, (_, i) => `dest-${i}`);
    for (const id of ids) {
      await store.insertTls13Ticket(id, { session: randomBytes(300), hash: `h-${id}`, expiresAt: now + 60_000 }, 8, now);
      await store.setTls12Session(id, { session: randomBytes(300), hash: `s-${id}`, expiresAt: now + 60_000 });
    }
    const slots = await Promise.all(
      ids.map((id) => Promise.all([`${prefix}d:{${id}}`, `${prefix}d:{${id}}:t13`].map((k) => raw.cluster('KEYSLOT', k)))),
    );
    assert.ok(
      slots.every(([a, b]) => a === b),
      'the list and the hash of a destination share a slot',
    );
    const primaries = new Set(await Promise.all(ids.map(async (id) => (await cluster.primaryOf(`${prefix}d:{${id}}`)).port)));
    assert.equal(primaries.size, 3, 'twelve destinations land on all three primaries');
    assert.deepEqual(await store.size(), { destinations: 12, tickets: 12 });
  } finally {
    raw.disconnect();
    await store.close();
  }
});

test(
  'two instances on the cluster: sequential and 8×10 concurrent resume ≥ 95%, no ticket offered twice; a primary killed fails no connection',
  { skip, timeout: 120_000 },
  async (t) => {
    const cert = makeCert(['localhost']);
    const server: SServer = await startSServer('tls13-anti-replay', cert);
    const setup = (name: string) => ({
      name,
      upstream: { host: 'localhost', port: server.port, ca: cert.certFile },
      cache: { reuse: 'never', store: { type: 'redis', cluster: cluster.seeds.slice(0, 3), prefix: `fleet-cluster-${process.pid}:` } },
    });
    const instances: TunnelHarness[] = [];
    try {
      instances.push(await startTunnelService(setup('a')), await startTunnelService(setup('b')));
      const [a, b] = instances;
      // Sequential, alternating: the next connection starts once the last one's tickets are stored.
      const sequential: string[] = [];
      for (let i = 0; i < 20; i++) {
        const via = i % 2 === 0 ? a : b;
        const seen = via.handshakes().length;
        sequential.push((await verdictPlain(via.port)).verdict);
        await via.waitFor(isHandshake, seen + 1);
      }
      const reused = (vs: string[]): number => vs.filter((v) => v === 'Reused').length;
      t.diagnostic(`sequential: ${reused(sequential)}/20 resumed`);
      assert.deepEqual(sequential, ['New', ...Array<string>(19).fill('Reused')]);

      // 8 at once (4 per instance), 10 rounds, after one round that stocks the slot.
      const round = async (): Promise<string[]> => {
        const [seenA, seenB] = [a.handshakes().length, b.handshakes().length];
        const pages = await Promise.all(Array.from({ length: 8 }, (_, i) => verdictPlain((i % 2 === 0 ? a : b).port)));
        await Promise.all([a.waitFor(isHandshake, seenA + 4), b.waitFor(isHandshake, seenB + 4)]);
        return pages.map((p) => p.verdict);
      };
      await round();
      const concurrent: string[] = [];
      for (let i = 0; i < 10; i++) concurrent.push(...(await round()));
      t.diagnostic(`8×10 concurrent: ${reused(concurrent)}/80 resumed`);
      assert.ok(reused(concurrent) >= 76, `${reused(concurrent)}/80 resumed`);
      const offeredTwice = (): number => {
        const hashes = [...a.handshakes(), ...b.handshakes()].flatMap((e: HandshakeEvent) => (e.offeredHash ? [e.offeredHash] : []));
        return hashes.length - new Set(hashes).size;
      };
      assert.equal(offeredTwice(), 0, 'no ticket offered twice');

      // The primary of the destination's slot killed while 4 clients keep connecting.
      const id = keyOf(targetFromConfig({ host: 'localhost', port: server.port, ca: cert.certFile, verify: true })).id;
      const victim = await cluster.primaryOf(`fleet-cluster-${process.pid}:d:{${id}}`);
      const results: { at: number; verdict: string; error?: string }[] = [];
      let running = true;
      const loop = async (via: TunnelHarness): Promise<void> => {
        while (running) {
          try {
            results.push({ at: Date.now(), verdict: (await verdictPlain(via.port)).verdict });
          } catch (err) {
            results.push({ at: Date.now(), verdict: 'failed', error: (err as Error).message });
          }
        }
      };
      const loops = [a, b, a, b].map((via) => loop(via));
      const promoted = cluster.nodes.filter((n) => n !== victim).map((n) => n.process);
      // Its replica's own log says when it took over.
      const failover = Promise.any(promoted.map((p) => waitForOutput(p, /Failover election won/, 1, 30_000)));
      await until(() => results.length >= 40, 30_000, '40 connections before the kill');
      const killedAt = Date.now();
      victim.process.child.kill('SIGKILL');
      await failover;
      const promotedAt = Date.now();
      // Judged on connections, not on time: the last 100 of 300 made after the promotion.
      const afterPromotion = (): typeof results => results.filter((r) => r.at > promotedAt);
      await until(() => afterPromotion().length >= 300, 60_000, '300 connections after the promotion');
      running = false;
      await Promise.all(loops);
      const after = afterPromotion().slice(200, 300);
      t.diagnostic(
        `kill -9 of the slot's primary: ${results.length} connections, ${results.filter((r) => r.verdict === 'failed').length} failed; ` +
          `promotion ${promotedAt - killedAt} ms after the kill; resumed in the last 100 of the first 300 after it: ${reused(after.map((r) => r.verdict))}/${after.length}; ` +
          `tickets offered twice: ${offeredTwice()}`,
      );
      assert.deepEqual(
        results.filter((r) => r.verdict === 'failed').map((r) => r.error),
        [],
      );
      assert.ok(reused(after.map((r) => r.verdict)) >= 0.9 * after.length, 'resumption is back after the failover');
    } finally {
      await Promise.all(instances.map((i) => i.stop()));
      await server.stop();
    }
  },
);
