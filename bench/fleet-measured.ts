/**
 * The figures of docs/fleet.md "Measured", each against private Debian `redis-server`s started
 * here, through the store's own write path (RedisTicketStore and its Lua scripts):
 *   ack     µs per take on a primary with one replica, without and with `replicaAck` (WAIT 1 50)
 *   seal    µs per take+insert (one connection's store work) unsealed and sealed; one seal+open alone
 *   memory  bytes per stored ticket (used_memory and MEMORY USAGE after 1,000 destinations × 8), and
 *           used_memory after 100,000 destinations × 8 tickets (MiB)
 * Run: `node --import tsx bench/fleet-measured.ts [ack] [seal] [memory]` (all three without arguments).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisTicketStore, type RedisStoreOptions } from '../src/resumption/redis-store.js';
import { Sealer } from '../src/resumption/seal.js';
import { startRedisServer } from '../test/support/redis-server.js';
import { waitForOutput } from '../test/support/redis-sentinel.js';
import { sealCycle } from './fleet.js';

/** The session size the fleet bench stores (a Node TLS 1.3 session with an ECDSA P-256 leaf is 800-900 bytes). */
const SESSION_BYTES = 850;

const sealer = (): Sealer => new Sealer([{ id: 'bench', key: randomBytes(32) }], 'bench');

/** Median, mean and 99th percentile of µs timings. */
function summary(times: number[]): { median: number; mean: number; p99: number } {
  const xs = [...times].sort((a, b) => a - b);
  return { median: xs[xs.length >> 1], mean: xs.reduce((a, b) => a + b, 0) / xs.length, p99: xs[Math.floor(xs.length * 0.99)] };
}

/**
 * µs per operation of two stores, alternating one operation each (so the load of a shared machine
 * falls on both alike): `op` is timed, `setup` (untimed) runs before it.
 */
async function alternate(
  stores: [RedisTicketStore, RedisTicketStore],
  n: number,
  op: (store: RedisTicketStore, i: number) => Promise<void>,
  setup: (store: RedisTicketStore, i: number) => Promise<void> = async () => undefined,
): Promise<[number[], number[]]> {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < n; i++) {
    for (const k of [0, 1] as const) {
      await setup(stores[k], i);
      const t = performance.now();
      await op(stores[k], i);
      times[k].push((performance.now() - t) * 1000);
    }
  }
  return times;
}

const line = (label: string, t: number[]): string => {
  const { median, mean, p99 } = summary(t);
  return `${label}: median ${median.toFixed(0)} µs, mean ${mean.toFixed(0)} µs, p99 ${p99.toFixed(0)} µs`;
};

async function ack(): Promise<string[]> {
  const primary = await startRedisServer(['--repl-diskless-sync-delay', '0']);
  const replica = await startRedisServer(['--replicaof', '127.0.0.1', String(primary.port)]);
  try {
    await waitForOutput(replica.process, /MASTER <-> REPLICA sync: Finished with success/, 1, 15_000);
    const options: RedisStoreOptions = { url: primary.url, prefix: 'bench-ack:', maxDestinations: 100 };
    const plain = await RedisTicketStore.connect(options);
    const acked = await RedisTicketStore.connect({ ...options, prefix: 'bench-acked:', replicaAck: { replicas: 1, timeoutMs: 50 } });
    const session = randomBytes(SESSION_BYTES);
    const n = 500;
    const [p, a] = await alternate(
      [plain, acked],
      n,
      async (store, i) => {
        const { ticket } = await store.takeTls13Ticket('ack', Date.now());
        if (!ticket) throw new Error(`take ${i} offered nothing (errors: ${store.errors})`);
      },
      (store, i) =>
        store.insertTls13Ticket('ack', { session, hash: `a${i}`, expiresAt: Date.now() + 3_600_000 }, 8, Date.now()).then(() => undefined),
    );
    await plain.close();
    await acked.close();
    const extra = summary(a).median - summary(p).median;
    return [
      `${n} takes each on a primary with one replica, alternating, each after an untimed insert; WAIT's cost: +${extra.toFixed(0)} µs per take (median)`,
      line('  without replicaAck', p),
      line('  with replicaAck { replicas: 1, timeoutMs: 50 }', a),
    ];
  } finally {
    await replica.stop();
    await primary.stop();
  }
}

async function seal(): Promise<string[]> {
  const redis = await startRedisServer();
  try {
    const base = { url: redis.url, maxDestinations: 100 };
    const plain = await RedisTicketStore.connect({ ...base, prefix: 'bench-plain:' });
    const sealed = await RedisTicketStore.connect({ ...base, prefix: 'bench-sealed:', sealer: sealer() });
    const session = randomBytes(SESSION_BYTES);
    const n = 3000;
    // What one resumed connection asks of the store: take a ticket, insert the one the server sent.
    const [p, s] = await alternate([plain, sealed], n, async (store, i) => {
      const now = Date.now();
      await store.takeTls13Ticket('seal', now);
      await store.insertTls13Ticket('seal', { session, hash: `s${i}`, expiresAt: now + 3_600_000 }, 8, now);
    });
    await plain.close();
    await sealed.close();
    const extra = summary(s).median - summary(p).median;
    return [
      `${n} take+insert cycles each (one connection's store work), alternating; sealing's cost: +${extra.toFixed(0)} µs per connection (median)`,
      line('  unsealed', p),
      line('  sealed', s),
      `one seal + one open of an ${SESSION_BYTES}-byte session alone (AES-256-GCM), 20,000 times: ${sealCycle(20_000).toFixed(1)} µs`,
    ];
  } finally {
    await redis.stop();
  }
}

/** Fills `destinations` × 8 tickets through insertTls13Ticket, 200 destinations at a time. */
async function fill(store: RedisTicketStore, destinations: number, from = 0): Promise<void> {
  const now = Date.now();
  const session = randomBytes(SESSION_BYTES);
  for (let d = from; d < from + destinations; d += 200) {
    const ids = Array.from({ length: Math.min(200, from + destinations - d) }, (_, i) =>
      createHash('sha256')
        .update(`d${d + i}`)
        .digest('hex'),
    );
    for (let t = 0; t < 8; t++)
      await Promise.all(
        ids.map((id) => store.insertTls13Ticket(id, { session, hash: `h${t}${id.slice(0, 10)}`, expiresAt: now + 3_600_000 }, 8, now)),
      );
  }
}

async function memory(): Promise<string[]> {
  const redis = await startRedisServer();
  const raw = new Redis(redis.url);
  const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await raw.info('memory'))?.[1]);
  const out: string[] = [];
  try {
    for (const sealed of [false, true]) {
      await raw.flushall();
      const store = await RedisTicketStore.connect({
        url: redis.url,
        prefix: 'tb:',
        maxDestinations: 100_000,
        ...(sealed ? { sealer: sealer() } : {}),
      });
      const before = await used();
      await fill(store, 1000);
      const perTicket = ((await used()) - before) / 8000;
      const id = createHash('sha256').update('d0').digest('hex');
      const [list, hash] = [`tb:d:{${id}}:t13`, `tb:d:{${id}}`];
      const usage = (await raw.memory('USAGE', list, 'SAMPLES', '0')) ?? 0;
      const hashUsage = (await raw.memory('USAGE', hash, 'SAMPLES', '0')) ?? 0;
      out.push(
        `${sealed ? 'sealed' : 'unsealed'}, ${SESSION_BYTES}-byte sessions, 1,000 destinations × 8: used_memory +${perTicket.toFixed(0)} bytes per ticket; ` +
          `MEMORY USAGE of one destination's list ${usage} bytes (${(usage / 8).toFixed(0)} per ticket), its hash (last spent ticket, facts) ${hashUsage} bytes`,
      );
      if (sealed) {
        const started = performance.now();
        await fill(store, 99_000, 1000);
        const total = await used();
        const info = await raw.info('memory');
        const rss = Number(/used_memory_rss:(\d+)/.exec(info)?.[1]);
        out.push(
          `sealed, 100,000 destinations × 8 (800,000 tickets, filled in ${((performance.now() - started) / 1000).toFixed(0)} s): ` +
            `used_memory ${(total / 2 ** 20).toFixed(0)} MiB (${((total - before) / 800_000) | 0} bytes per ticket), used_memory_rss ${(rss / 2 ** 20).toFixed(0)} MiB, ` +
            `keys ${await raw.dbsize()}`,
        );
      }
      await store.close();
    }
    return out;
  } finally {
    raw.disconnect();
    await redis.stop();
  }
}

const parts = { ack, seal, memory } as const satisfies Record<string, () => Promise<string[]>>;
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(parts);
for (const name of chosen) {
  const part = parts[name as keyof typeof parts];
  if (!part) throw new Error(`unknown part ${name}: one of ${Object.keys(parts).join(', ')}`);
  console.log(`${name}:`);
  for (const line of await part()) console.log(`  ${line}`);
}
