import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TLSSocket } from 'node:tls';
import { Redis } from 'ioredis';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { unwrapSession } from '../../src/resumption/session-envelope.js';
import { makeCert } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { sample } from '../support/metrics.js';
import { dumpRedis, type RedisValue } from '../support/redis-dump.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startSServer, verdictPlain, type SServer } from '../support/servers.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../support/tunnel-service.js';

/**
 * Sealed at rest, checked from Redis's side: two instances share one Redis, connections alternate
 * between them against `openssl s_server -tls1_3 -max_early_data 16384 -www` (anti-replay: its
 * page says New or Reused). The same run without `seal` on another Redis is the control: equal
 * resumption, and there the scan does find the sessions. Then a rotation (a new current key, the
 * old one still listed) and a removal (only a third key listed) on the sealed Redis.
 */

const skip = missing('redis-server', 'openssl');
const CONNECTIONS = 201; // the first is a full handshake: 200 resumed
const NEEDLE = Buffer.from('nodejs:tls:session');
const cert = makeCert(['localhost']);
const dir = mkdtempSync(join(tmpdir(), 'tb-sealed-'));
const keyVar = `TB_TEST_SEAL_K2_${process.pid}`;
/** Every session Node handed to ticketbooth in this process: what must not reach Redis readable. */
const sessions: Buffer[] = [];
const realEmit = TLSSocket.prototype.emit;
const realWrite = process.stderr.write;
const stderr: string[] = [];
let server: SServer;
let clear: RedisServer;
let sealed: RedisServer;
const running: TunnelHarness[] = [];

before(async () => {
  if (skip) return;
  writeFileSync(join(dir, 'k1.key'), randomBytes(32), { mode: 0o600 }); // raw bytes
  writeFileSync(join(dir, 'k3.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  process.env[keyVar] = randomBytes(32).toString('base64');
  TLSSocket.prototype.emit = function (this: TLSSocket, name: string | symbol, ...args: unknown[]): boolean {
    if (name === 'session' && Buffer.isBuffer(args[0])) sessions.push(Buffer.from(args[0]));
    return (realEmit as (this: TLSSocket, n: string | symbol, ...a: unknown[]) => boolean).call(this, name, ...args);
  } as typeof realEmit;
  process.stderr.write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    stderr.push(String(chunk));
    return (realWrite as (c: string | Uint8Array, ...r: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
  };
  server = await startSServer('tls13-anti-replay', cert);
  [clear, sealed] = [await startRedisServer(), await startRedisServer()];
});

after(async () => {
  TLSSocket.prototype.emit = realEmit;
  process.stderr.write = realWrite;
  delete process.env[keyVar];
  await Promise.all(running.map((t) => t.stop()));
  await server?.stop();
  await clear?.stop();
  await sealed?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const keys = {
  k1: { id: 'k1', file: join(dir, 'k1.key') },
  k2: { id: 'k2', env: keyVar },
  k3: { id: 'k3', file: join(dir, 'k3.key') },
};

/** Two instances (a with /metrics) on one Redis; the previous pair stopped first. */
async function fleet(redis: RedisServer, seal?: { keys: object[]; current: string }): Promise<[TunnelHarness, TunnelHarness]> {
  await Promise.all(running.splice(0).map((t) => t.stop()));
  const setup = (name: string, admin: boolean) => ({
    name,
    admin,
    upstream: { host: 'localhost', port: server.port, ca: cert.certFile },
    cache: { reuse: 'never', store: { type: 'redis', url: redis.url, ...(seal ? { seal } : {}) } },
  });
  const pair: [TunnelHarness, TunnelHarness] = [await startTunnelService(setup('a', true)), await startTunnelService(setup('b', false))];
  running.push(...pair);
  return pair;
}

/** n connections, alternating; the next one starts once the last one's tickets are stored (its audit line). */
async function alternate([a, b]: [TunnelHarness, TunnelHarness], n: number): Promise<{ verdicts: string[]; lines: HandshakeEvent[] }> {
  const verdicts: string[] = [];
  const lines: HandshakeEvent[] = [];
  for (let i = 0; i < n; i++) {
    const via = i % 2 === 0 ? a : b;
    const seen = via.handshakes().length;
    verdicts.push((await verdictPlain(via.port)).verdict);
    lines.push((await via.waitFor(isHandshake, seen + 1))[seen] as HandshakeEvent);
  }
  return { verdicts, lines };
}

/** Every command Redis runs from now on, as MONITOR shows it (binary escaped; ASCII such as the envelope's name stays readable). */
async function monitor(redis: RedisServer): Promise<{ commands: string[]; stop(): void }> {
  const base = new Redis(redis.url);
  const mon = await base.monitor();
  const commands: string[] = [];
  mon.on('monitor', (_time: string, args: string[]) => commands.push(args.join(' ')));
  return {
    commands,
    stop: () => {
      mon.disconnect();
      base.disconnect();
    },
  };
}

const reused = (verdicts: string[]): number => verdicts.filter((v) => v === 'Reused').length;
const holds = (values: RedisValue[], needle: Buffer): string[] =>
  values.filter((v) => v.parts.some((p) => p.includes(needle))).map((v) => v.key);
const dropped = async (t: TunnelHarness): Promise<number> =>
  sample(await (await fetch(`http://127.0.0.1:${t.service.admin!.address().port}/metrics`)).text(), 'ticketbooth_store_dropped_total', {
    reason: 'unknown-key',
  }) ?? 0;

test(
  'sealed at rest: Redis holds no session, resumption as without seal; a rotation keeps resuming; a removed key is never offered',
  { skip, timeout: 180_000 },
  async (t) => {
    // The control: no seal. The start warns; the scan finds the sessions.
    const fromStart = stderr.length;
    const clearSeen = await monitor(clear);
    const control = await alternate(await fleet(clear), CONNECTIONS);
    clearSeen.stop();
    assert.ok(
      clearSeen.commands.some((c) => c.includes('nodejs:tls:session')),
      'without seal, MONITOR shows the sessions written',
    );
    assert.ok(
      stderr.slice(fromStart).some((l) => /cache\.store: no seal: TLS sessions .* are written to Redis in the clear/.test(l)),
      'a fleet without seal warns at start',
    );
    const clearRaw = new Redis(clear.url);
    const clearDump = await dumpRedis(clearRaw).finally(() => clearRaw.disconnect());
    assert.ok(holds(clearDump, NEEDLE).length > 0, 'the control scan finds the Node envelope in the clear');
    const clearSessions = sessions.splice(0);

    // Sealed: the same run.
    const warned = stderr.length;
    const sealedSeen = await monitor(sealed);
    const run = await alternate(await fleet(sealed, { keys: [keys.k1], current: 'k1' }), CONNECTIONS);
    sealedSeen.stop();
    t.diagnostic(`MONITOR: ${sealedSeen.commands.length} commands in the sealed run, ${clearSeen.commands.length} in the control`);
    assert.deepEqual(
      sealedSeen.commands.filter((c) => c.includes('nodejs:tls:session')),
      [],
      'no command sent to Redis carries a session',
    );
    assert.equal(stderr.slice(warned).filter((l) => /no seal/.test(l)).length, 0);
    t.diagnostic(`resumed: ${reused(control.verdicts)}/${CONNECTIONS} without seal, ${reused(run.verdicts)}/${CONNECTIONS} sealed`);
    assert.equal(reused(run.verdicts), reused(control.verdicts));
    assert.equal(reused(run.verdicts), CONNECTIONS - 1);

    const raw = new Redis(sealed.url);
    try {
      const values = await dumpRedis(raw);
      const ders = sessions.map((s) => unwrapSession(s).der);
      const cleartext = ders.flatMap((der) => holds(values, der));
      // The master secret sits in the DER's first 100 bytes: no 24-byte stretch of them either.
      const stretches = ders.flatMap((der) => [24, 48, 72].flatMap((at) => holds(values, der.subarray(at, at + 24))));
      t.diagnostic(
        `sealed Redis: ${values.length} keys (${[...new Set(values.map((v) => v.type))].join(', ')}), ` +
          `${values.reduce((n, v) => n + v.parts.length, 0)} values read back; ${ders.length} sessions received (${clearSessions.length} in the control)`,
      );
      assert.ok(ders.length >= CONNECTIONS, `${ders.length} sessions received`);
      assert.deepEqual(holds(values, NEEDLE), [], 'no value holds the Node session envelope');
      assert.deepEqual([...cleartext, ...stretches], [], 'no value holds a session DER');
      assert.ok(holds(values, Buffer.from('TBS1\x02k1', 'latin1')).length > 0, 'sealed under k1');

      // Rotation: k2 seals, k1 still opens. The first connection of each instance takes a k1 ticket.
      sessions.splice(0);
      const rotated = await alternate(await fleet(sealed, { keys: [keys.k2, keys.k1], current: 'k2' }), 20);
      t.diagnostic(`after the rotation to k2: ${reused(rotated.verdicts)}/20 resumed`);
      assert.equal(reused(rotated.verdicts), 20, 'a key rotation keeps resuming');
      const list = (await dumpRedis(raw)).find((v) => v.type === 'list');
      const ids = (list?.parts ?? []).map((p) => /TBS1.(k\d)/s.exec(p.toString('latin1'))?.[1]);
      t.diagnostic(`the list after the rotation, newest first: ${ids.join(' ')}`);
      assert.equal(ids[0], 'k2', 'what is received now is sealed under k2');

      // k1 and k2 removed: what they sealed is dropped and counted, never offered; resumption restarts from k3.
      const stocked = list?.parts.length ?? 0;
      const pair = await fleet(sealed, { keys: [keys.k3], current: 'k3' });
      const removed = await alternate(pair, 10);
      t.diagnostic(`k1 and k2 removed: ${stocked} tickets stocked under them; verdicts ${removed.verdicts.join(' ')}`);
      assert.equal(removed.lines[0].offered, 'none', 'the first connection offered nothing');
      assert.equal(removed.verdicts[0], 'New');
      assert.equal(reused(removed.verdicts), 9);
      assert.equal(await dropped(pair[0]), stocked, 'every ticket under a removed key dropped and counted');
      assert.ok(
        stderr.some((l) => /dropped a session sealed under key "k2", which cache\.store\.seal\.keys does not list/.test(l)),
        'said on stderr',
      );
      const offered = [...run.lines, ...rotated.lines, ...removed.lines].flatMap((e) => (e.offeredHash ? [e.offeredHash] : []));
      assert.equal(new Set(offered).size, offered.length, 'no ticket offered twice');
    } finally {
      raw.disconnect();
    }
  },
);
