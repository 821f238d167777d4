import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { parseConfig } from '../../src/config/load.js';
import { Service } from '../../src/service/service.js';
import { makeCert } from '../support/certs.js';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.js';
import { missing } from '../support/interop.js';
import { freeLoopbackAddress, freeTcpPort } from '../support/ports.js';
import { startPostfix, tls13Destination, type Postfix } from '../support/postfix.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { assertEachOnce, sendThroughLegacy, startLegacyClient, waitForHandshakes } from '../support/postfix-chain.js';
import { dial, sendMessage } from '../support/smtp-client.js';

const MESSAGES = 12;

/**
 * End to end, with real programs only: swaks → Postfix (legacy client, relayhost = ticketbooth,
 * no TLS, one connection per message) → ticketbooth (mode mx, MX from dnsmasq) → Postfix
 * (destination: STARTTLS, TLS 1.3 only, maildir delivery).
 */
/** dest.test's MX, served by dnsmasq, is a Postfix with STARTTLS on TLS 1.3 only that logs resumption. */
async function startDestination(): Promise<{ dns: Dnsmasq; dest: Postfix }> {
  const mxAddress = await freeLoopbackAddress(25);
  const cert = makeCert(['mx.dest.test']);
  const dns = await startDnsmasq({ mx: ['dest.test,mx.dest.test,10'], hosts: [`mx.dest.test,${mxAddress}`] });
  const dest = await startPostfix({
    smtpd: `${mxAddress}:25`,
    maildirDomains: ['dest.test'],
    main: {
      myhostname: 'mx.dest.test',
      ...tls13Destination(cert),
    },
  });
  return { dns, dest };
}

describe('Postfix → ticketbooth (mx) → Postfix over STARTTLS', { skip: missing('postfix', 'dnsmasq', 'swaks') }, () => {
  let dns: Dnsmasq;
  let dest: Postfix;
  let legacy: Postfix;
  let service: Service;
  const events: AuditEvent[] = [];
  let audit: AuditLog;
  let legacyPort = 0;

  before(async () => {
    ({ dns, dest } = await startDestination());

    audit = new AuditLog();
    audit.on('event', (e) => events.push(e));
    const config = parseConfig(`
listeners:
  - name: smarthost
    type: smtp
    listen: 127.0.0.1:0
    hostname: relay.ticketbooth.test
    route: { mode: mx }
    tls: { level: may }
    # One upstream connection per message: this measures resumption, not the connection cache.
    connectionCache: { enabled: false }
dns: { servers: ["${dns.server}"] }
`);
    service = await Service.start(config, audit);
    const tbPort = service.addressOf('smarthost').port;

    legacyPort = await freeTcpPort();
    legacy = await startLegacyClient(legacyPort, tbPort, 4);
  });

  after(async () => {
    await legacy?.stop();
    await service?.stop(2000);
    await dest?.stop();
    await dns?.stop();
  });

  test('every message arrives exactly once, over TLS 1.3, and the destination resumed sessions', async (t) => {
    const ids = Array.from({ length: MESSAGES }, (_, i) => `e2e-${i}-${process.pid}`);
    for (const id of ids) await sendThroughLegacy(legacyPort, id);
    const files = await dest.waitForDelivered(MESSAGES, 90_000);
    // Each message once: as many files as messages, and each Message-Id exactly once.
    assertEachOnce(files, ids);

    // The legacy Postfix saw ticketbooth's 250 only after the destination queued the message.
    await legacy.waitForLog(/status=sent/, MESSAGES);
    assert.equal((legacy.log().match(/status=sent \(250 2\.0\.0 Ok: queued as/g) ?? []).length, MESSAGES, legacy.log().slice(-2000));

    const destLog = dest.log();
    const tls13 = (destLog.match(/TLS connection established from .*TLSv1\.3/g) ?? []).length;
    const resumed = (destLog.match(/Reusing old session/g) ?? []).length;
    assert.equal(tls13, MESSAGES, 'every delivery went over TLS 1.3');
    assert.ok(resumed > 0, `the destination resumed sessions (${resumed}/${MESSAGES})`);
    t.diagnostic(`destination: ${resumed}/${MESSAGES} TLS sessions resumed`);

    const tx = events.filter((e) => e.event === 'smtp.transaction');
    assert.equal(tx.length, MESSAGES);
    assert.ok(
      tx.every((e) => e.event === 'smtp.transaction' && e.code === 250 && e.recipients === 1 && e.nextHop?.startsWith('mx.dest.test[')),
    );
    // A handshake's audit line is written when its upstream closes (or 1 s after the handshake):
    // the last one may still be on its way once the legacy client logged its delivery.
    const handshakeCount = (): number => events.filter((e) => e.event === 'tls.handshake').length;
    while (handshakeCount() < MESSAGES) await new Promise((resolve) => audit.once('event', resolve));
    const handshakes = events.filter((e) => e.event === 'tls.handshake');
    assert.equal(
      handshakes.filter((e) => e.event === 'tls.handshake' && e.resumed).length,
      resumed,
      'our audit log agrees with the destination',
    );
  });
});

const REUSE_MESSAGES = 10;
/** The legacy Postfix's connections to ticketbooth at once: at most this many handshakes can start before a ticket is in hand. */
const REUSE_CONCURRENCY = 4;

/**
 * The same path with `cache.reuse: adaptive`. The destination Postfix issues one ticket per full
 * TLS 1.3 handshake and none on a resumed one, so single-use tickets resume at most every other
 * connection (5 of 10); it accepts a ticket again, so re-offering the last spent one must beat that:
 * only connections that start before the first ticket is in are full, at most REUSE_CONCURRENCY (4),
 * so at least 6 of 10 resume.
 */
describe('Postfix → ticketbooth (mx, reuse: adaptive) → Postfix over STARTTLS', { skip: missing('postfix', 'dnsmasq', 'swaks') }, () => {
  let chain: Chain;
  let dest: Postfix;
  let legacy: Postfix;
  let sh: Smarthost;
  let legacyPort = 0;

  before(async () => {
    // One upstream connection per message: this measures resumption, not the connection cache.
    chain = await startChain({ connectionCache: { enabled: false } }, { cache: { reuse: 'adaptive' } }, REUSE_CONCURRENCY);
    ({ dest, legacy, sh, legacyPort } = chain);
  });

  after(() => chain?.stop());

  test('every message arrives once; the destination resumed more than single use allows; re-offers are marked', async (t) => {
    const ids = Array.from({ length: REUSE_MESSAGES }, (_, i) => `reuse-${i}-${process.pid}`);
    for (const id of ids) await sendThroughLegacy(legacyPort, id);
    const files = await dest.waitForDelivered(REUSE_MESSAGES, 90_000);
    assertEachOnce(files, ids);
    await legacy.waitForLog(/status=sent/, REUSE_MESSAGES);
    assert.equal((legacy.log().match(/status=sent \(250 2\.0\.0 Ok: queued as/g) ?? []).length, REUSE_MESSAGES, legacy.log().slice(-2000));

    // One upstream connection per message; its audit line is written when it closes.
    const handshakes = await waitForHandshakes(sh, REUSE_MESSAGES);
    await dest.waitForLog(/TLS connection established from .*TLSv1\.3/, REUSE_MESSAGES);
    const destLog = dest.log();
    const tls13 = (destLog.match(/TLS connection established from .*TLSv1\.3/g) ?? []).length;
    const resumed = (destLog.match(/Reusing old session/g) ?? []).length;
    t.diagnostic(
      `destination: ${resumed}/${REUSE_MESSAGES} TLS sessions resumed; audit: ${handshakes.filter((e) => e.reoffered).length} re-offered`,
    );
    assert.equal(tls13, REUSE_MESSAGES, 'every delivery went over TLS 1.3');
    assert.equal(handshakes.length, REUSE_MESSAGES, 'one upstream handshake per message');
    // The premise of the ceiling: this Postfix hands out one ticket per full handshake, none on resumption.
    for (const e of handshakes) assert.equal(e.ticketsReceived, e.resumed ? 0 : 1, JSON.stringify(e));
    assert.ok(resumed > REUSE_MESSAGES / 2, `resumed ${resumed}/${REUSE_MESSAGES}: single use allows at most ${REUSE_MESSAGES / 2}`);
    assert.equal(handshakes.filter((e) => e.resumed).length, resumed, 'our audit log agrees with the destination');

    // Each ticket is offered fresh once (reoffered: false), and every further offer of it is marked reoffered: true.
    const received = new Set(handshakes.flatMap((e) => e.receivedHashes));
    const offers = new Map<string, boolean[]>();
    for (const e of handshakes) {
      if (e.offered !== 'tls13-ticket') continue;
      assert.ok(e.offeredHash && received.has(e.offeredHash), `offered a ticket this run received: ${JSON.stringify(e)}`);
      offers.set(e.offeredHash, [...(offers.get(e.offeredHash) ?? []), e.reoffered]);
    }
    for (const [hash, marks] of offers) {
      assert.equal(marks.filter((m) => !m).length, 1, `ticket ${hash}: offered fresh exactly once (${marks.join(',')})`);
    }
    const reoffered = handshakes.filter((e) => e.reoffered);
    // Each full handshake brought one ticket, used fresh at most once: every resumption beyond those was a re-offer.
    const fullCount = handshakes.filter((e) => !e.resumed).length;
    assert.ok(
      reoffered.length >= resumed - fullCount,
      `${reoffered.length} re-offers for ${resumed} resumptions from ${fullCount} tickets`,
    );
    assert.ok(
      reoffered.every((e) => e.resumed),
      'this destination accepts a ticket again',
    );
  });
});

const CACHE_MESSAGES = 100;

/**
 * The connection cache with a legacy client that opens one connection per message: Postfix hands
 * ticketbooth 100 messages in two bursts, four connections at a time; ticketbooth carries them over
 * a few cached upstream connections, so the destination sees a handful of TLS handshakes.
 */
describe('Postfix (one message per connection) → ticketbooth (connection cache) → Postfix', { skip: missing('postfix', 'dnsmasq') }, () => {
  let chain: Chain;
  let dest: Postfix;
  let legacy: Postfix;
  let sh: Smarthost;
  let legacyPort = 0;

  before(async () => {
    chain = await startChain({}, {}, 4);
    ({ dest, legacy, sh, legacyPort } = chain);
  });

  after(() => chain?.stop());

  test('100 messages in two bursts: each arrives once, the destination sees at most 10 TLS handshakes', async (t) => {
    const ids = Array.from({ length: CACHE_MESSAGES }, (_, i) => `cache-${i}-${process.pid}`);
    for (const burst of [ids.slice(0, CACHE_MESSAGES / 2), ids.slice(CACHE_MESSAGES / 2)]) {
      // Injected over one session; the legacy Postfix relays each on its own connection.
      const d = await dial(legacyPort);
      await d.cmd('EHLO injector.test');
      for (const id of burst) {
        const body = `Message-Id: <${id}@legacy.test>\r\nSubject: ${id}\r\n\r\nbody of ${id}\r\n`;
        assert.equal((await sendMessage(d, 'sender@legacy.test', ['user@dest.test'], body)).final.code, 250);
      }
      await d.cmd('QUIT');
      await legacy.waitForLog(/status=sent/, ids.indexOf(burst.at(-1)!) + 1, 60_000);
    }
    const files = await dest.waitForDelivered(CACHE_MESSAGES, 60_000);
    assertEachOnce(files, ids);
    const connections = (legacy.log().match(/status=sent \(250 2\.0\.0 Ok: queued as/g) ?? []).length;
    assert.equal(connections, CACHE_MESSAGES, 'the legacy client got 250 for each, one connection per message');

    const handshakes = (dest.log().match(/TLS connection established from/g) ?? []).length;
    const tx = await sh.waitForTransactions(CACHE_MESSAGES);
    const reused = tx.filter((e) => e.reused).length;
    t.diagnostic(`destination: ${handshakes} TLS handshakes for ${CACHE_MESSAGES} messages; ${reused} transactions on a cached connection`);
    assert.ok(handshakes >= 1 && handshakes <= 10, `${handshakes} TLS handshakes at the destination`);
    assert.equal(reused, CACHE_MESSAGES - handshakes, 'every transaction without a handshake of its own rode a cached connection');
  });
});

interface Chain {
  dns: Dnsmasq;
  dest: Postfix;
  sh: Smarthost;
  legacy: Postfix;
  legacyPort: number;
  stop(): Promise<void>;
}

/** dnsmasq and the destination, ticketbooth (mode mx, `may`, with `listener` and `top` settings), the legacy Postfix in front. */
async function startChain(listener: Record<string, unknown>, top: Record<string, unknown>, concurrency: number): Promise<Chain> {
  const { dns, dest } = await startDestination();
  const started: Array<{ stop(): Promise<void> }> = [dns, dest];
  const stop = async (): Promise<void> => {
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const sh = await startSmarthost(
      { route: { mode: 'mx' }, tls: { level: 'may' }, ...listener },
      { ...top, dns: { servers: [dns.server] } },
    );
    started.push(sh);
    const legacyPort = await freeTcpPort();
    const legacy = await startLegacyClient(legacyPort, sh.port, concurrency);
    started.push(legacy);
    return { dns, dest, sh, legacy, legacyPort, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
