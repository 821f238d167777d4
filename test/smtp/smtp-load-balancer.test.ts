import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { SmtpClient } from '../../src/upstream/smtp-client/client.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { startHaproxy, type Haproxy } from '../support/haproxy.js';
import { missing } from '../support/interop.js';
import { freeTcpPort } from '../support/ports.js';
import { startPostfix, tls13Destination, type Postfix } from '../support/postfix.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { until } from '../support/until.js';

const MESSAGES = 12;

/**
 * Issue 3, item 6 (see-through load balancers), end to end with real programs: ticketbooth
 * (mode relay, TLS level encrypt) → Debian's haproxy (tcp, round robin) → two Postfix nodes
 * (STARTTLS, TLS 1.3 only, each with its own ticket keys, as separate Postfix instances have).
 * One address, two nodes: only the EHLO name, read before STARTTLS, tells them apart, and the
 * cache key includes it, so a node's tickets are only ever offered back to that node.
 */

interface Pool {
  nodes: Postfix[];
  lb: Haproxy;
  tb: Smarthost;
  stop(): Promise<void>;
}

/** Two destination nodes named `names` behind haproxy, and a ticketbooth relaying to haproxy. */
async function startPool(names: [string, string], cert: CertPair): Promise<Pool> {
  const nodes: Postfix[] = [];
  let lb: Haproxy | undefined;
  let tb: Smarthost | undefined;
  const stop = async (): Promise<void> => {
    await tb?.stop();
    await lb?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (const name of names) {
      nodes.push(
        await startPostfix({
          smtpd: `127.0.0.1:${await freeTcpPort()}`,
          maildirDomains: ['dest.test'],
          main: {
            myhostname: name,
            ...tls13Destination(cert),
          },
        }),
      );
    }
    lb = await startHaproxy(nodes.map((n) => ({ host: '127.0.0.1', port: portOf(n) })));
    // One upstream connection per message (no connection cache): each is a handshake to a node.
    tb = await startSmarthost({
      route: { mode: 'relay', host: lb.host, port: lb.port },
      tls: { level: 'encrypt' },
      connectionCache: { enabled: false },
    });
    return { nodes, lb, tb, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The port of the node's smtpd service (the last line of its master.cf names it). */
function portOf(node: Postfix): number {
  const m = /^127\.0\.0\.1:(\d+) inet /m.exec(readFileSync(`${node.configDir}/master.cf`, 'utf8'));
  if (!m) throw new Error('no smtpd service in master.cf');
  return Number(m[1]);
}

/**
 * Sends `n` messages through ticketbooth, one client connection each, one after another (so
 * the balancer alternates), and waits until every upstream connection's audit line is written
 * and each node logged the end of every connection it had (one per message it delivered).
 */
async function deliver(pool: Pool, n: number, tag: string): Promise<{ ids: string[]; handshakes: HandshakeEvent[] }> {
  const ids = Array.from({ length: n }, (_, i) => `lb-${tag}-${i}-${process.pid}`);
  for (const id of ids) {
    const d = await dial(pool.tb.port);
    assert.equal((await d.cmd('EHLO client.test')).code, 250);
    const sent = await sendMessage(d, 'sender@client.test', ['user@dest.test'], message(id));
    assert.equal(sent.final.code, 250, `message ${id}: ${sent.final.lines.join(' ')}`);
    assert.equal((await d.cmd('QUIT')).code, 221);
    await d.closed();
  }
  const handshakes = await pool.tb.waitForEvents('tls.handshake', n, 15_000);
  await until(() => pool.nodes.reduce((sum, node) => sum + node.delivered().length, 0) >= n, 60_000, `${n} deliveries`);
  for (const node of pool.nodes) await node.waitForLog(/disconnect from /, node.delivered().length);
  return { ids, handshakes };
}

/** The Message-Id of every delivered file, across nodes. */
function deliveredIds(nodes: Postfix[]): string[] {
  return nodes.flatMap((node) => node.delivered().map((f) => /^Message-Id: <([^@>]+)@/im.exec(readFileSync(f, 'utf8'))?.[1] ?? f));
}

function count(log: string, pattern: RegExp): number {
  return (log.match(new RegExp(pattern.source, 'g')) ?? []).length;
}

describe('ticketbooth → haproxy round robin → two Postfix nodes with their own EHLO names', { skip: missing('postfix', 'haproxy') }, () => {
  const names: [string, string] = ['node-a.dest.test', 'node-b.dest.test'];
  let cert: CertPair;
  let pool: Pool;

  before(async () => {
    cert = makeCert(['mx.dest.test']); // one certificate for the pool, as behind a real balancer
    pool = await startPool(names, cert);
  });
  after(async () => {
    await pool?.stop();
  });

  test('each node gets its own cache slot: every message once, no ticket offered across nodes, both nodes resume', async (t) => {
    const { ids, handshakes } = await deliver(pool, MESSAGES, 'split');

    // Every message exactly once, across both nodes.
    assert.deepEqual(deliveredIds(pool.nodes).sort(), [...ids].sort());

    // Two EHLO names, each with its own key (and one key per name).
    const keysByName = new Map<string, Set<string>>();
    for (const h of handshakes) {
      assert.ok(h.ehloName, 'the EHLO name is on every tls.handshake line');
      assert.equal(h.protocol, 'TLSv1.3');
      keysByName.set(h.ehloName, (keysByName.get(h.ehloName) ?? new Set()).add(h.key));
    }
    assert.deepEqual([...keysByName.keys()].sort(), names);
    assert.ok(
      [...keysByName.values()].every((keys) => keys.size === 1),
      'one key per node',
    );
    const [keyA, keyB] = names.map((n) => [...keysByName.get(n)!][0]);
    assert.notEqual(keyA, keyB);

    // A ticket is only ever offered on a connection to the node that issued it.
    const issuer = new Map<string, string>(); // ticket hash → EHLO name of the connection that received it
    const offers = handshakes.filter((h) => h.offeredHash !== undefined);
    let crossing = 0;
    for (const h of handshakes) {
      if (h.offeredHash !== undefined) {
        const from = issuer.get(h.offeredHash);
        assert.ok(from, `offered ticket ${h.offeredHash} was received earlier in this run`);
        if (from !== h.ehloName) crossing++;
      }
      for (const r of h.receivedHashes) issuer.set(r, h.ehloName!);
    }
    assert.equal(crossing, 0, 'no ticket offered across nodes');
    assert.ok(offers.length > 0, 'tickets were offered');
    assert.ok(
      offers.every((h) => h.resumed),
      'every offered ticket resumed at the node that issued it',
    );

    // Each node's own log agrees: its connections, its resumptions, and no ticket it could not read.
    const lines: string[] = [];
    for (const [i, node] of pool.nodes.entries()) {
      const mine = handshakes.filter((h) => h.ehloName === names[i]);
      const log = node.log();
      const resumed = count(log, /Reusing old session/);
      assert.equal(count(log, /TLS connection established from .*TLSv1\.3/), mine.length, `${names[i]}: its TLS connections`);
      assert.equal(node.delivered().length, mine.length, `${names[i]}: one message per connection`);
      assert.ok(resumed > 0, `${names[i]} resumed sessions`);
      assert.equal(resumed, mine.filter((h) => h.resumed).length, `${names[i]}: the node and the audit agree on resumptions`);
      // Postfix logs `Decrypting session ticket` only for a ticket under one of its own keys: every
      // ticket offered to this node was one it issued.
      assert.equal(
        count(log, /Decrypting session ticket/),
        mine.filter((h) => h.offeredHash !== undefined).length,
        `${names[i]}: every offered ticket was its own`,
      );
      assert.equal(
        count(log, /Issuing session ticket/),
        mine.reduce((s, h) => s + h.ticketsReceived, 0),
        `${names[i]}: tickets issued = tickets ticketbooth stored`,
      );
      lines.push(`${names[i]}: ${mine.length} connections, ${resumed} resumed`);
    }
    t.diagnostic(`split by EHLO name: ${lines.join('; ')}; ${offers.length} offers, 0 across nodes`);
  });

  test('contrast: a ticket from node A does not resume at node B (per-node ticket keys), but does at node A', async () => {
    const [a, b] = pool.nodes;
    const first = await starttlsHandshake(portOf(a));
    assert.equal(first.ehloName, names[0]);
    assert.equal(first.resumed, false);
    assert.ok(first.tickets.length > 0, 'node A issued a ticket');
    const ticket = first.tickets[first.tickets.length - 1];

    const decryptingAtB = count(b.log(), /Decrypting session ticket/);
    const atB = await starttlsHandshake(portOf(b), ticket);
    assert.equal(atB.ehloName, names[1]);
    assert.equal(atB.resumed, false, "node B cannot read node A's ticket");
    await b.waitForLog(/disconnect from /, b.delivered().length + 1);
    assert.equal(count(b.log(), /Decrypting session ticket/), decryptingAtB, 'node B found no key of its own for it');

    const atA = await starttlsHandshake(portOf(a), ticket);
    assert.equal(atA.resumed, true, 'the same ticket resumes at node A: it was good, just not for B');
  });
});

describe('contrast: the same pool with one shared EHLO name', { skip: missing('postfix', 'haproxy') }, () => {
  let pool: Pool;

  before(async () => {
    pool = await startPool(['mx.dest.test', 'mx.dest.test'], makeCert(['mx.dest.test']));
  });
  after(async () => {
    await pool?.stop();
  });

  test('one cache slot for both nodes: offered tickets cross nodes and are refused', async (t) => {
    const { ids, handshakes } = await deliver(pool, MESSAGES, 'shared');
    assert.deepEqual(deliveredIds(pool.nodes).sort(), [...ids].sort(), 'still every message exactly once');
    assert.equal(new Set(handshakes.map((h) => h.key)).size, 1, 'one key for both nodes');

    const offers = handshakes.filter((h) => h.offeredHash !== undefined);
    const resumed = handshakes.filter((h) => h.resumed).length;
    const refused = handshakes.filter((h) => h.fullCause === 'refused').length;
    assert.equal(refused, offers.length - resumed);
    assert.ok(refused > 0, 'offers crossed nodes and were refused');
    // The nodes confirm: only tickets under their own keys were decrypted, and all of those resumed.
    const decrypted = pool.nodes.reduce((s, n) => s + count(n.log(), /Decrypting session ticket/), 0);
    const reused = pool.nodes.reduce((s, n) => s + count(n.log(), /Reusing old session/), 0);
    assert.equal(decrypted, resumed);
    assert.equal(reused, resumed);
    t.diagnostic(`shared EHLO name: ${offers.length} offers, ${refused} refused (crossed nodes), ${resumed}/${MESSAGES} resumed`);
  });
});

/**
 * One STARTTLS connection straight to a node with Node's own TLS client, offering `session`:
 * the EHLO name, whether the node resumed, and the tickets it issued (read until its close).
 */
async function starttlsHandshake(port: number, session?: Buffer): Promise<{ ehloName: string; resumed: boolean; tickets: Buffer[] }> {
  const raw = tcpConnect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  const probe = new SmtpClient(raw, { replyMs: 10_000 });
  await probe.greeting();
  await probe.hello('probe.test');
  await probe.requestTls();
  const ehloName = probe.ehloName;
  const tickets: Buffer[] = [];
  const socket = tlsConnect({ socket: raw, rejectUnauthorized: false, minVersion: 'TLSv1.3', ...(session ? { session } : {}) });
  socket.on('session', (der: Buffer) => tickets.push(der));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const resumed = socket.isSessionReused();
  // QUIT and read to the node's close: a ticket sent after the handshake is read on the way.
  socket.resume();
  socket.write('QUIT\r\n');
  await Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('node did not close after QUIT')), 10_000).unref()),
  ]);
  return { ehloName, resumed, tickets };
}
