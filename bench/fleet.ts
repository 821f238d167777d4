/**
 * Fleet mode, measured side by side in one run (run alone: `node --import tsx bench/fleet.ts`):
 * 1. store cost: a take + insert cycle (what one connection does) on the memory store and on Redis;
 * 2. through ticketbooth: 60 sequential connections to `s_server -tls1_3 -max_early_data 16384`
 *    with the memory store on one instance, then with Redis alternating over two instances:
 *    resumption by the server's own verdict and the handshake time the audit line reports.
 * Needs redis-server and openssl (Debian packages).
 */
import { randomBytes } from 'node:crypto';
import type { HandshakeEvent } from '../src/audit/events.js';
import { MemoryTicketStore } from '../src/resumption/memory-store.js';
import { RedisTicketStore } from '../src/resumption/redis-store.js';
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

async function connections(instances: TunnelHarness[], n: number): Promise<{ resumed: number; fullMs: number; resumedMs: number }> {
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
  return { resumed, fullMs: median(full), resumedMs: median(res) };
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
    const memUs = await storeCycles(memory, cycles);
    const redisUs = await storeCycles(shared, cycles);
    await memory.close();
    await shared.close();
    out.push(
      `store take+insert: memory ${memUs.toFixed(1)} µs, redis ${redisUs.toFixed(1)} µs per connection (x${(redisUs / memUs).toFixed(0)})`,
    );

    const upstream = { host: 'localhost', port: server.port, ca: cert.certFile };
    const one = await startTunnelService({ name: 'memory', upstream });
    started.push(one);
    const fleetCache = { store: { type: 'redis', url: redis.url, prefix: 'bench-fleet:' } };
    const a = await startTunnelService({ name: 'a', upstream, cache: fleetCache });
    const b = await startTunnelService({ name: 'b', upstream, cache: fleetCache });
    started.push(a, b);
    const n = 60;
    const m = await connections([one], n);
    const f = await connections([a, b], n);
    out.push(
      `60 connections, memory store, one instance: ${m.resumed}/${n} resumed; handshake full ${m.fullMs} ms, resumed ${m.resumedMs} ms`,
    );
    out.push(
      `60 connections, redis store, alternating two instances: ${f.resumed}/${n} resumed; handshake full ${f.fullMs} ms, resumed ${f.resumedMs} ms`,
    );
    out.push(`resumed handshake, redis fleet / memory: x${(f.resumedMs / m.resumedMs).toFixed(2)}`);
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
