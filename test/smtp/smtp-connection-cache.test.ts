import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { UpstreamPoolView } from '../../src/net/tcp-listener.js';
import { Credentials } from '../../src/smtp/credentials.js';
import { poolKey } from '../../src/smtp/connection-cache.js';
import type { Route } from '../../src/smtp/routing.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer, type FaultServerOptions } from '../support/smtp-fault-server.js';
import { sample } from '../support/metrics.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

/**
 * The connection cache: upstream connections shared by every client session of a listener, so a
 * client that sends one message per connection costs the next hop one connection, not one each.
 * What the next hop saw (its connection count, the messages it stored) is the verdict.
 */

const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 2, dataDoneSeconds: 2 };

async function withHop(
  cache: Record<string, unknown>,
  run: (hop: FaultServer, sh: Smarthost) => Promise<void>,
  hopOptions: FaultServerOptions = {},
): Promise<void> {
  const hop = await startFaultServer(hopOptions);
  const sh = await startSmarthost({
    route: { mode: 'relay', host: '127.0.0.1', port: hop.port },
    tls: { level: 'none' },
    timeouts,
    connectionCache: cache,
  });
  try {
    await run(hop, sh);
  } finally {
    await sh.stop();
    await hop.stop();
  }
}

/** One client session, one message (as sendmail, Exim or a script would): the code the client got. */
async function oneMessage(sh: Smarthost, id: string, opts: { smtputf8?: boolean } = {}): Promise<number> {
  const d = await dial(sh.port);
  await d.cmd('EHLO client.test');
  const from = opts.smtputf8 ? 'ü@client.test' : 'a@client.test';
  const r = await sendMessage(d, from, ['b@dest.test'], message(id), opts.smtputf8 ? ' SMTPUTF8' : '');
  await d.cmd('QUIT');
  await d.closed();
  return r.replies.find((x) => x.code >= 400)?.code ?? r.final.code;
}

function pool(sh: Smarthost): UpstreamPoolView {
  return sh.service.listeners.find((l) => l.name === 'sh')!.upstreamPool!;
}

function storedIds(hop: FaultServer): string[] {
  return hop.stored.map((m) => /^Message-Id: <([^>]+)>/im.exec(m.body.toString('latin1'))?.[1] ?? '?');
}

describe('smtp connection cache', () => {
  test('five clients, one message each: one upstream connection, every message once, the audit line says which rode it', async () => {
    await withHop({}, async (hop, sh) => {
      for (let i = 0; i < 5; i++) assert.equal(await oneMessage(sh, `c${i}`), 250);
      assert.equal(hop.connections, 1, 'the next hop saw one connection');
      assert.equal(hop.stored.length, 5);
      assert.deepEqual(new Set(storedIds(hop)).size, 5, 'each message exactly once');
      const tx = await sh.waitForTransactions(5);
      assert.equal(tx[0].reused, undefined, 'the first made the connection');
      assert.deepEqual(
        tx.slice(1).map((t) => t.reused?.use),
        [2, 3, 4, 5],
      );
      assert.ok(tx.slice(1).every((t) => t.reused!.ageMs >= 0));
      // Probed before each reuse: the next hop saw an RSET before each later MAIL.
      assert.equal(hop.commands.filter((c) => c.line === 'RSET').length, 4);
      const stats = pool(sh).stats;
      assert.equal(stats.reused, 4);
      assert.equal(stats.pooled, 5);
    });
  });

  test('a next hop without PIPELINING: the probe and MAIL go one by one, and reuse still works', async () => {
    await withHop(
      {},
      async (hop, sh) => {
        for (let i = 0; i < 3; i++) assert.equal(await oneMessage(sh, `np${i}`), 250);
        assert.equal(hop.connections, 1);
        const verbs = hop.commands.map((c) => c.line.split(' ')[0]);
        assert.deepEqual(
          verbs.filter((v) => v === 'RSET' || v === 'MAIL'),
          ['MAIL', 'RSET', 'MAIL', 'RSET', 'MAIL'],
        );
      },
      { extensions: ['8BITMIME', 'SIZE 10240000'] },
    );
  });

  test('enabled: false: a connection per client session, as before', async () => {
    await withHop({ enabled: false }, async (hop, sh) => {
      for (let i = 0; i < 3; i++) assert.equal(await oneMessage(sh, `off${i}`), 250);
      assert.equal(hop.connections, 3);
    });
  });

  for (const [name, fault] of [
    ['answers the RSET probe with 421', 'closing-at-rset'],
    ['answers the RSET probe with garbage', 'garbage-at-rset'],
    ['drops the connection at the RSET probe', 'drop-at-rset'],
  ] as const) {
    test(`the next hop ${name}: the next message goes out once, on a new connection; the client never sees it`, async () => {
      await withHop({}, async (hop, sh) => {
        assert.equal(await oneMessage(sh, 'before'), 250);
        hop.fault = fault;
        // The probe fails on the cached connection; the new one must not meet the fault at its own MAIL.
        const sent = oneMessage(sh, 'after');
        await hop.closedConnections(1);
        hop.fault = 'none';
        assert.equal(await sent, 250);
        assert.equal(hop.connections, 2);
        assert.deepEqual(storedIds(hop).sort(), ['after@client.test', 'before@client.test']);
        assert.equal(pool(sh).stats.probeFailed, 1);
      });
    });
  }

  test('the next hop closed the cached connection (a restart, its idle timeout): the next message still goes out once', async () => {
    await withHop({}, async (hop, sh) => {
      assert.equal(await oneMessage(sh, 'first'), 250);
      assert.equal(hop.dropConnections(), 1);
      await hop.closedConnections(1);
      assert.equal(await oneMessage(sh, 'second'), 250);
      assert.equal(hop.connections, 2);
      assert.deepEqual(storedIds(hop).sort(), ['first@client.test', 'second@client.test']);
    });
  });

  test('idle limit: a connection unused past idleSeconds is closed (QUIT) and the next message makes a new one', async () => {
    await withHop({ idleSeconds: 0.2 }, async (hop, sh) => {
      assert.equal(await oneMessage(sh, 'one'), 250);
      await hop.closedConnections(1); // the cache let it go: nothing made it close but the idle limit
      assert.equal(hop.commands.at(-1)!.line, 'QUIT');
      assert.equal(await oneMessage(sh, 'two'), 250);
      assert.equal(hop.connections, 2);
      assert.equal(pool(sh).stats.expired, 1);
    });
  });

  test('use limit: maxUses 2 carries two transactions per connection', async () => {
    await withHop({ maxUses: 2 }, async (hop, sh) => {
      for (let i = 0; i < 5; i++) assert.equal(await oneMessage(sh, `u${i}`), 250);
      assert.equal(hop.connections, 3);
      assert.deepEqual(
        (await sh.waitForTransactions(5)).map((t) => t.reused?.use ?? 1),
        [1, 2, 1, 2, 1],
      );
    });
  });

  test('age limit: a connection older than maxAgeSeconds is not cached', async () => {
    // The hop holds each 250 past the limit, so every connection is too old when let go, however fast the machine.
    await withHop(
      { maxAgeSeconds: 0.05 },
      async (hop, sh) => {
        for (let i = 0; i < 3; i++) assert.equal(await oneMessage(sh, `a${i}`), 250);
        assert.equal(hop.connections, 3);
        assert.deepEqual({ retired: pool(sh).stats.retired, pooled: pool(sh).stats.pooled }, { retired: 3, pooled: 0 });
      },
      { dotReplyDelayMs: 100 },
    );
  });

  test('per-hop cap: of three connections let go together, maxIdlePerHop 1 keeps one', async () => {
    await withHop({ maxIdlePerHop: 1 }, async (hop, sh) => {
      // Three sessions in their transactions at once: three connections, then all let go.
      const sessions = await Promise.all([0, 1, 2].map(() => dial(sh.port)));
      for (const d of sessions) await d.cmd('EHLO client.test');
      for (const [i, d] of sessions.entries()) {
        await d.cmd('MAIL FROM:<a@client.test>');
        assert.equal((await d.cmd('RCPT TO:<b@dest.test>')).code, 250);
        assert.equal(i + 1, hop.connections);
      }
      for (const d of sessions) await d.cmd('RSET');
      await hop.closedConnections(2);
      const stats = pool(sh).stats;
      assert.equal(stats.evicted, 2);
      assert.equal(pool(sh).idle, 1);
      for (const d of sessions) d.close();
    });
  });

  test('a transaction the cached connection cannot carry (SMTPUTF8 not offered) does not take it', async () => {
    await withHop(
      {},
      async (hop, sh) => {
        assert.equal(await oneMessage(sh, 'plain'), 250);
        assert.equal(await oneMessage(sh, 'utf8', { smtputf8: true }), 553);
        assert.equal(hop.connections, 2, 'a new connection was asked whether it can');
        assert.equal(hop.commands.filter((c) => c.line === 'RSET').length, 0, 'the cached one was not even probed');
      },
      { extensions: ['PIPELINING', '8BITMIME', 'SIZE 10240000'] },
    );
  });
});

test('metrics: ticketbooth_upstream_pool_total by event and ticketbooth_upstream_pool_idle, per listener', async () => {
  const hop = await startFaultServer();
  const sh = await startSmarthost(
    { route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts },
    { admin: { listen: '127.0.0.1:0' } },
  );
  try {
    for (let i = 0; i < 3; i++) assert.equal(await oneMessage(sh, `m${i}`), 250);
    const text = await (await fetch(`http://127.0.0.1:${sh.service.admin!.address().port}/metrics`)).text();
    assert.equal(sample(text, 'ticketbooth_upstream_pool_total', { listener: 'sh', event: 'pooled' }), 3);
    assert.equal(sample(text, 'ticketbooth_upstream_pool_total', { listener: 'sh', event: 'reused' }), 2);
    assert.equal(sample(text, 'ticketbooth_upstream_pool_total', { listener: 'sh', event: 'probe-failed' }), 0);
    assert.equal(sample(text, 'ticketbooth_upstream_pool_idle', { listener: 'sh' }), 1);
  } finally {
    await sh.stop();
    await hop.stop();
  }
});

describe('connection cache key', () => {
  const route: Route = {
    name: 'route',
    mode: 'relay',
    host: 'relay.test',
    port: 25,
    tls: { level: 'verify', secureMatch: 'exact', mtaSts: false, daneInsecureMx: 'dane' },
  };
  const base = poolKey('route|relay', route, 'tb.test');

  test('each part of what a connection was set up with, changed alone, changes the key', () => {
    const variants: Array<[string, string]> = [
      ['hop (another domain under mode mx)', poolKey('route|mx|b.test', route, 'tb.test')],
      ['host', poolKey('route|relay', { ...route, host: 'other.test' }, 'tb.test')],
      ['port', poolKey('route|relay', { ...route, port: 587 }, 'tb.test')],
      ['TLS level', poolKey('route|relay', { ...route, tls: { ...route.tls, level: 'encrypt' } }, 'tb.test')],
      ['CA', poolKey('route|relay', { ...route, tls: { ...route.tls, ca: '-----BEGIN CERTIFICATE-----' } }, 'tb.test')],
      ['minimum version', poolKey('route|relay', { ...route, tls: { ...route.tls, minVersion: 'TLSv1.3' } }, 'tb.test')],
      ['ciphers', poolKey('route|relay', { ...route, tls: { ...route.tls, ciphers: 'ECDHE+AESGCM' } }, 'tb.test')],
      ['name matching', poolKey('route|relay', { ...route, tls: { ...route.tls, secureMatch: 'dot-nexthop' } }, 'tb.test')],
      ['AUTH user', poolKey('route|relay', { ...route, auth: new Credentials('alice', 'pw') }, 'tb.test')],
      ['EHLO name', poolKey('route|relay', route, 'other.tb.test')],
    ];
    for (const [part, key] of variants) assert.notEqual(key, base, part);
    assert.equal(new Set(variants.map(([, k]) => k)).size, variants.length);
    assert.equal(poolKey('route|relay', { ...route }, 'tb.test'), base, 'an equal route gives the same key');
  });

  test('two AUTH users never share; the password is not in the key', () => {
    const alice = poolKey('route|relay', { ...route, auth: new Credentials('alice', 'secret-1') }, 'tb.test');
    const bob = poolKey('route|relay', { ...route, auth: new Credentials('bob', 'secret-1') }, 'tb.test');
    assert.notEqual(alice, bob);
    assert.ok(!alice.includes('secret'));
  });
});
