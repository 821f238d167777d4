/**
 * Fleet mode, measured side by side in one run (run alone: `node --import tsx bench/fleet.ts`):
 * 1. store cost: a take + insert cycle (what one connection does) on the memory store and on Redis;
 * 2. through ticketbooth: 60 sequential connections to `s_server -tls1_3 -max_early_data 16384`
 *    with the memory store on one instance, then with Redis alternating over two instances:
 *    resumption by the server's own verdict and the handshake time the audit line reports.
 * 3. sealing (`cache.store.seal`): its cost per take+insert cycle, and Redis memory per sealed ticket
 *    (used_memory before and after filling 10,000 destinations × 8 tickets of 850 bytes).
 * Needs redis-server and openssl (Debian packages).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HandshakeEvent } from '../src/audit/events.js';
import { MemoryTicketStore } from '../src/resumption/memory-store.js';
import { RedisTicketStore } from '../src/resumption/redis-store.js';
import { Sealer } from '../src/resumption/seal.js';
import type { TicketStore } from '../src/resumption/store.js';
import { makeCert } from '../test/support/certs.js';
import { startRedisServer } from '../test/support/redis-server.js';
import { startSServer, verdictPlain } from '../test/support/servers.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../test/support/tunnel-service.js';

async function storeCycles(store: TicketStore, n: number): Promise<number> {
  const now = Date.now();
  const session = randomBytes(800);
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    await store.insertTls13Ticket('bench', { session, hash: `b${i}`, expiresAt: now + 3_600_000 }, 8, now);
    await store.takeTls13Ticket('bench', now);
  }
  return ((performance.now() - started) * 1000) / n; // µs per cycle
}

/** µs for one seal and one open of an 850-byte session: what sealing adds to a connection (its insert and its take). */
export function sealCycle(n: number): number {
  const sealer = new Sealer([{ id: 'bench', key: randomBytes(32) }], 'bench');
  const session = randomBytes(850);
  const context = Buffer.from(`ticketbooth session\x00${'0'.repeat(64)}\x001800000000000:0123456789ab:`);
  const started = performance.now();
  for (let i = 0; i < n; i++) sealer.open(sealer.seal(session, context), context);
  return ((performance.now() - started) * 1000) / n;
}

/** Redis's used_memory per ticket after filling `destinations` × 8 tickets of `bytes` each, sealed. */
async function memoryPerTicket(url: string, destinations: number, bytes: number): Promise<number> {
  const sealer = new Sealer([{ id: 'bench', key: randomBytes(32) }], 'bench');
  const store = await RedisTicketStore.connect({ url, prefix: 'bench-mem:', maxDestinations: destinations, sealer });
  const { Redis } = await import('ioredis');
  const raw = new Redis(url);
  try {
    const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await raw.info('memory'))?.[1]);
    const before = await used();
    const now = Date.now();
    const session = randomBytes(bytes);
    for (let d = 0; d < destinations; d += 200) {
      const batch = Array.from({ length: Math.min(200, destinations - d) }, (_, i) =>
        createHash('sha256')
          .update(`d${d + i}`)
          .digest('hex'),
      );
      for (let t = 0; t < 8; t++) {
        await Promise.all(
          batch.map((id) => store.insertTls13Ticket(id, { session, hash: `h${t}${id.slice(0, 10)}`, expiresAt: now + 3_600_000 }, 8, now)),
        );
      }
    }
    return ((await used()) - before) / (destinations * 8);
  } finally {
    raw.disconnect();
    await store.close();
  }
}

async function connections(
  instances: TunnelHarness[],
  n: number,
): Promise<{ resumed: number; fullMs: number; resumedMs: number; perSecond: number }> {
  const began = performance.now();
  let resumed = 0;
  const full: number[] = [];
  const res: number[] = [];
  for (let i = 0; i < n; i++) {
    const via = instances[i % instances.length];
    const seen = via.handshakes().length;
    const v = await verdictPlain(via.port);
    if (v.verdict === 'Reused') resumed++;
    const [line] = (await via.waitFor(isHandshake, seen + 1)).slice(seen) as HandshakeEvent[];
    (line.resumed ? res : full).push(line.handshakeMs);
  }
  const median = (xs: number[]): number => (xs.length ? [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] : NaN);
  return { resumed, fullMs: median(full), resumedMs: median(res), perSecond: (1000 * n) / (performance.now() - began) };
}

export async function benchFleet(): Promise<string[]> {
  const out: string[] = [];
  const redis = await startRedisServer();
  const cert = makeCert(['localhost']);
  const server = await startSServer('tls13-anti-replay', cert);
  const started: TunnelHarness[] = [];
  try {
    const memory = new MemoryTicketStore(100);
    const shared = await RedisTicketStore.connect({ url: redis.url, prefix: 'bench:', maxDestinations: 100 });
    const cycles = 2000;
    const sealed = await RedisTicketStore.connect({
      url: redis.url,
      prefix: 'bench-sealed:',
      maxDestinations: 100,
      sealer: new Sealer([{ id: 'bench', key: randomBytes(32) }], 'bench'),
    });
    const memUs = await storeCycles(memory, cycles);
    const redisUs = await storeCycles(shared, cycles);
    const sealedUs = await storeCycles(sealed, cycles);
    await memory.close();
    await shared.close();
    await sealed.close();
    out.push(
      `store take+insert: memory ${memUs.toFixed(1)} µs, redis ${redisUs.toFixed(1)} µs per connection (x${(redisUs / memUs).toFixed(0)})`,
    );
    out.push(
      `store take+insert, redis sealed: ${sealedUs.toFixed(1)} µs per connection; one seal + one open alone: ${sealCycle(20_000).toFixed(1)} µs`,
    );
    const perTicket = await memoryPerTicket(redis.url, 10_000, 850);
    out.push(
      `redis memory per sealed 850-byte ticket (10,000 destinations × 8): ${Math.round(perTicket)} bytes; ` +
        `100,000 × 8 would take ${((perTicket * 800_000) / 2 ** 20).toFixed(0)} MiB`,
    );

    const upstream = { host: 'localhost', port: server.port, ca: cert.certFile };
    const one = await startTunnelService({ name: 'memory', upstream });
    started.push(one);
    const fleetCache = { store: { type: 'redis', url: redis.url, prefix: 'bench-fleet:' } };
    const a = await startTunnelService({ name: 'a', upstream, cache: fleetCache });
    const b = await startTunnelService({ name: 'b', upstream, cache: fleetCache });
    started.push(a, b);
    const keyFile = join(mkdtempSync(join(tmpdir(), 'tb-bench-seal-')), 'seal.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const seal = { keys: [{ id: 'bench', file: keyFile }], current: 'bench' };
    const sealedCache = { store: { type: 'redis', url: redis.url, prefix: 'bench-fleet-sealed:', seal } };
    const c = await startTunnelService({ name: 'c', upstream, cache: sealedCache });
    const d = await startTunnelService({ name: 'd', upstream, cache: sealedCache });
    started.push(c, d);
    const n = 60;
    const m = await connections([one], n);
    const f = await connections([a, b], n);
    const g = await connections([c, d], n);
    out.push(
      `60 connections, memory store, one instance: ${m.resumed}/${n} resumed; handshake full ${m.fullMs} ms, resumed ${m.resumedMs} ms`,
    );
    out.push(
      `60 connections, redis store, alternating two instances: ${f.resumed}/${n} resumed; handshake full ${f.fullMs} ms, resumed ${f.resumedMs} ms`,
    );
    out.push(`resumed handshake, redis fleet / memory: x${(f.resumedMs / m.resumedMs).toFixed(2)}`);
    out.push(
      `60 connections, redis store sealed, alternating two instances: ${g.resumed}/${n} resumed; handshake full ${g.fullMs} ms, ` +
        `resumed ${g.resumedMs} ms; ${g.perSecond.toFixed(0)} conn/s sequential against ${f.perSecond.toFixed(0)} unsealed`,
    );
  } finally {
    for (const s of started) await s.stop();
    await server.stop();
    await redis.stop();
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await benchFleet()) console.log(line);
}
