import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { keyOf } from '../../src/upstream/tls-target.js';
import { targetFromConfig } from '../../src/upstream/target-from-config.js';
import { makeCert } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startSServer, verdictPlain, type SServer } from '../support/servers.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../support/tunnel-service.js';

/**
 * Fleet mode: two ticketbooth instances (two Services, two ports) share one Redis. The server is
 * `openssl s_server -tls1_3 -max_early_data 16384 -www`: anti-replay on, so a ticket offered a
 * second time is refused (a silent full handshake), and its page says `New` or `Reused`.
 */

const skip = missing('redis-server', 'openssl');
const cert = makeCert(['localhost']);
let redis: RedisServer;
let server: SServer;
let a: TunnelHarness;
let b: TunnelHarness;

before(async () => {
  if (skip) return;
  redis = await startRedisServer();
  server = await startSServer('tls13-anti-replay', cert);
  const setup = (name: string) => ({
    name,
    upstream: { host: 'localhost', port: server.port, ca: cert.certFile },
    cache: { reuse: 'never', store: { type: 'redis', url: redis.url, prefix: `fleet-${process.pid}:` } },
  });
  a = await startTunnelService(setup('a'));
  b = await startTunnelService(setup('b'));
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await server?.stop();
  await redis?.stop();
});

const all = (): HandshakeEvent[] => [...a.handshakes(), ...b.handshakes()];

test('alternating between two instances, every connection after the first resumes', { skip }, async () => {
  const verdicts: string[] = [];
  const served: HandshakeEvent[] = [];
  for (let i = 0; i < 10; i++) {
    const via = i % 2 === 0 ? a : b;
    const seen = via.handshakes().length;
    verdicts.push((await verdictPlain(via.port)).verdict);
    // Its tickets are in Redis once its audit line is written: only then go to the other instance.
    const [line] = (await via.waitFor(isHandshake, seen + 1)).slice(seen);
    served.push(line as HandshakeEvent);
  }
  assert.deepEqual(verdicts, ['New', ...Array<string>(9).fill('Reused')]);
  // Each connection offered a ticket the *other* instance received on the connection before.
  for (let i = 1; i < served.length; i++) {
    assert.equal(served[i].listener, i % 2 === 0 ? 'a' : 'b');
    assert.equal(served[i].offered, 'tls13-ticket');
    assert.ok(
      served[i - 1].receivedHashes.includes(served[i].offeredHash ?? ''),
      `connection ${i + 1} offered a ticket from connection ${i}`,
    );
  }
});

test('2×N concurrent connections across both instances never offer the same ticket twice', { skip }, async () => {
  const N = 8;
  const key = keyOf(targetFromConfig({ host: 'localhost', port: server.port, ca: cert.certFile, verify: true }));
  /** perInstance connections to each instance at once; the servers' verdicts and both instances' audit lines. */
  const burst = async (perInstance: number): Promise<{ verdicts: string[]; lines: HandshakeEvent[] }> => {
    const [seenA, seenB] = [a.handshakes().length, b.handshakes().length];
    const pages = await Promise.all(Array.from({ length: 2 * perInstance }, (_, i) => verdictPlain((i % 2 === 0 ? a : b).port)));
    const linesA = (await a.waitFor(isHandshake, seenA + perInstance)).slice(seenA);
    const linesB = (await b.waitFor(isHandshake, seenB + perInstance)).slice(seenB);
    return { verdicts: pages.map((p) => p.verdict), lines: [...linesA, ...linesB] as HandshakeEvent[] };
  };

  await burst(N / 2); // fills the shared slot: most of these are full handshakes with 2 tickets each
  const stocked = await a.service.cache.ticketsLeft(key);
  assert.equal(stocked, await b.service.cache.ticketsLeft(key), 'both instances see one slot');
  assert.ok(stocked >= 4, `the shared slot holds ${stocked} tickets`);

  const { verdicts, lines } = await burst(N);
  assert.equal(lines.length, 2 * N);
  const offered = lines.filter((e) => e.offered === 'tls13-ticket');
  assert.ok(offered.length >= stocked, `${offered.length} of ${lines.length} connections offered a ticket; ${stocked} were stocked`);
  for (const name of ['a', 'b']) {
    assert.ok(
      lines.some((e) => e.listener === name && e.offered === 'tls13-ticket'),
      `instance ${name} offered no ticket`,
    );
  }
  // Every offered ticket was fresh, so the refusing server resumed each one.
  assert.ok(
    offered.every((e) => e.resumed),
    'an offered ticket was refused: it had been used before',
  );
  assert.equal(verdicts.filter((v) => v === 'Reused').length, offered.length);

  // Over the whole file, on both instances: no ticket hash offered twice, no refusal.
  const hashes = all()
    .filter((e) => e.offered === 'tls13-ticket')
    .map((e) => e.offeredHash);
  assert.equal(new Set(hashes).size, hashes.length, `a ticket was offered twice: ${hashes.join(' ')}`);
  assert.ok(
    all().every((e) => e.fullCause !== 'refused'),
    'a ticket was refused as reused',
  );
});
