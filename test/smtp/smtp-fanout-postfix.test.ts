import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.js';
import { missing } from '../support/interop.js';
import { freeTcpPort } from '../support/ports.js';
import type { Postfix } from '../support/postfix.js';
import { sendThroughLegacy, startLegacyClient } from '../support/postfix-chain.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

/**
 * Issue 23's check on the SMTP front: a Debian Postfix relays through ticketbooth (relayhost, one
 * message per connection, its default retry settings), ticketbooth in `mode: mx` with a spool;
 * each message is for one recipient in each of three domains with the same MX host. Every copy
 * arrives once and Postfix logs no deferral: the three domains went in one transaction.
 */
const DOMAINS = ['d1.test', 'd2.test', 'd3.test'] as const;

describe(
  'Postfix (relayhost) → ticketbooth SMTP front (mode mx, spool) → three domains',
  { skip: missing('postfix', 'swaks', 'dnsmasq') },
  () => {
    let dns: Dnsmasq;
    let mx: FaultServer;
    let sh: Smarthost;
    let legacy: Postfix;
    let legacyPort = 0;
    let spool = '';

    before(async () => {
      mx = await startFaultServer();
      dns = await startDnsmasq({ mx: DOMAINS.map((d) => `${d},mx.dest.test,10`), hosts: ['mx.dest.test,127.0.0.1'] });
      spool = mkdtempSync(join(tmpdir(), 'tb-spool-postfix-'));
      sh = await startSmarthost(
        {
          route: { mode: 'mx', port: mx.port },
          tls: { level: 'may' },
          timeouts: { idleSeconds: 30, dataSeconds: 30, connectSeconds: 5, replySeconds: 10, dataDoneSeconds: 10 },
          spool: { dir: spool },
        },
        { dns: { servers: [dns.server] } },
      );
      legacyPort = await freeTcpPort();
      legacy = await startLegacyClient(legacyPort, sh.port, 5);
    });
    after(async () => {
      await legacy?.stop();
      await sh?.stop();
      await mx?.stop();
      await dns?.stop();
    });

    test('10 messages × 3 domains: every copy once, 0 deferrals in Postfix’s log, nothing held', async () => {
      const started = performance.now();
      const ids = Array.from({ length: 10 }, (_, i) => `fanout-${i}-${process.pid}`);
      for (const id of ids) await sendThroughLegacy(legacyPort, id, DOMAINS.map((d) => `user@${d}`).join(','));
      await legacy.waitForLog(/status=sent/, ids.length * DOMAINS.length, 60_000);
      const log = legacy.log();
      assert.equal((log.match(/status=deferred/g) ?? []).length, 0, log.slice(-2000));
      // One copy per domain: mode mx keys a hop by domain, so each domain's copy is its own delivery.
      for (const d of DOMAINS) {
        const seen = mx.stored
          .filter((m) => m.to.some((t) => t.endsWith(`@${d}>`)))
          .map((m) => /^Message-Id: <([^@>]+)@/im.exec(m.body.toString('latin1'))?.[1])
          .sort();
        assert.deepEqual(seen, [...ids].sort(), `each message once for ${d}`);
      }
      assert.equal(mx.stored.length, ids.length * DOMAINS.length);
      const tx = await sh.waitForTransactions(ids.length * DOMAINS.length);
      assert.ok(
        tx.every((t) => t.hops === DOMAINS.length && t.code === 250),
        JSON.stringify(tx.map((t) => [t.hops, t.code])),
      );
      assert.deepEqual(readdirSync(spool), []);
      console.log(
        `# ${ids.length} messages × ${DOMAINS.length} domains: ${mx.stored.length} copies, ` +
          `${(log.match(/status=deferred/g) ?? []).length} deferrals, ${Math.round(performance.now() - started)} ms`,
      );
    });
  },
);
