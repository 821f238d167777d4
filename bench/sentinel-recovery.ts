/**
 * Does the Redis store come back after a Sentinel failover, every time? (`replicaAck` once lost it
 * in 1 of 6 runs.) N runs (argv[2], default 10), each: a fresh Sentinel group (primary, replica,
 * three sentinels), a store with `replicaAck` taking and inserting from four loops, the primary
 * killed (-9); recovered once a take on the promoted replica answers without a store error
 * (it has no replica left, so WAIT falls short: the take answers "not acknowledged", which
 * proves the connection works). Prints per run the ms from `+switch-master` to that, and the
 * client's status changes (ioredis `end` is the state it never leaves by itself).
 * With `race` (argv[3]), each run also forces the race that lost the store: at the first reconnection
 * after the kill, the connector is disconnected while it asks a sentinel for the primary (what
 * ioredis's failover detector does on `+switch-master`), which leaves ioredis in `end`.
 * Run: `node --import tsx bench/sentinel-recovery.ts 20 [race]` (needs redis-server, redis-sentinel).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisTicketStore } from '../src/resumption/redis-store.js';
import { startSentinelCluster } from '../test/support/redis-sentinel.js';

/** Give up on a run this long after the promotion. */
const RECOVERY_LIMIT_MS = 20_000;

interface Run {
  recoveredMs: number | undefined;
  statuses: string[];
}

async function oneRun(i: number, race: boolean): Promise<Run> {
  const cluster = await startSentinelCluster({ password: 'pw' });
  const messages: string[] = [];
  const store = await RedisTicketStore.connect({
    sentinels: cluster.sentinelAddresses,
    name: cluster.name,
    password: 'pw',
    prefix: `recovery-${i}:`,
    maxDestinations: 100,
    replicaAck: { replicas: 1, timeoutMs: 50 },
    onStatus: (m) => messages.push(m),
  });
  // The client itself, only to record its status changes for the report.
  const client = (store as unknown as { redis: Redis }).redis;
  const connector = (client as unknown as { connector: { disconnect(): void } }).connector;
  const statuses: string[] = [];
  const t0 = Date.now();
  for (const s of ['close', 'reconnecting', 'connecting', 'connect', 'ready', 'end'])
    client.on(s, () => statuses.push(`${s}@${Date.now() - t0}`));
  let running = true;
  let ops = 0;
  const loop = async (n: number): Promise<void> => {
    const session = randomBytes(800);
    while (running) {
      const now = Date.now();
      await store.insertTls13Ticket(`d${n}`, { session, hash: `h${ops}`, expiresAt: now + 3_600_000 }, 8, now);
      await store.takeTls13Ticket(`d${n}`, now);
      ops++;
      // No tight spin while the store fails fast.
      if (store.errors > 0) await new Promise((r) => setTimeout(r, 5));
    }
  };
  const loops = [0, 1, 2, 3].map(loop);
  try {
    while (ops < 200) await new Promise((r) => setTimeout(r, 10));
    const switched = cluster.switchMaster(30_000);
    if (race) client.once('connecting', () => setImmediate(() => connector.disconnect()));
    cluster.primary.child.kill('SIGKILL');
    const promotion = await switched;
    let recoveredMs: number | undefined;
    while (Date.now() - promotion.at < RECOVERY_LIMIT_MS) {
      const errors = store.errors;
      const now = Date.now();
      await store.insertTls13Ticket('probe', { session: randomBytes(100), hash: `p${now}`, expiresAt: now + 60_000 }, 8, now);
      if (store.errors === errors) {
        recoveredMs = Date.now() - promotion.at;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { recoveredMs, statuses: statuses.filter((s) => !s.startsWith('ready@') || statuses.indexOf(s) > 0) };
  } finally {
    running = false;
    await Promise.all(loops);
    await store.close();
    await cluster.stop();
  }
}

const n = Number(process.argv[2] ?? 10);
const race = process.argv[3] === 'race';
let recovered = 0;
for (let i = 0; i < n; i++) {
  const run = await oneRun(i, race);
  if (run.recoveredMs !== undefined) recovered++;
  const tail = run.statuses.slice(-6).join(' ');
  const ended = run.statuses.filter((s) => s.startsWith('end@')).length;
  console.log(
    `run ${i + 1}: ${run.recoveredMs === undefined ? `NOT recovered within ${RECOVERY_LIMIT_MS} ms` : `recovered ${run.recoveredMs} ms after the promotion`}; ioredis ended ${ended} time(s); statuses …${tail}`,
  );
}
console.log(`${recovered}/${n} runs recovered${race ? ' (the detector race forced in each)' : ''}`);
process.exit(recovered === n ? 0 : 1);
