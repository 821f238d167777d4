import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AuditEvent } from '../../src/audit/events.js';
import { missing } from '../support/interop.js';
import { sendMessages, startSender, startTicketboothTlsmgr, startTls13Destination, verdicts } from '../support/postfix-tlsmgr.js';
import { startRedisServer } from '../support/redis-server.js';

const MESSAGES = 20;

const running: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of running.reverse()) await stop().catch(() => undefined);
});

const vended = (events: AuditEvent[]): string[] =>
  events.flatMap((e) => (e.event === 'tlsmgr.lookup' && e.vended === 'tls13-ticket' ? [e.ticketHash ?? ''] : []));
const stored = (events: AuditEvent[]): Set<string> =>
  new Set(events.flatMap((e) => (e.event === 'tlsmgr.update' && e.result === 'stored' ? [e.ticketHash ?? ''] : [])));

/**
 * Two Postfix hosts (two sender instances, each with its own TLS and its own ticketbooth tlsmgr),
 * one Redis behind both tlsmgrs, one TLS 1.3 destination that issues one ticket per full
 * handshake. The senders take turns: a ticket one host received resumes the other's next
 * connection, and no ticket is vended twice across the two (single use holds fleet-wide).
 * Taking turns, A's connections are the full handshakes (the destination sends no ticket on a
 * resumption) and B's resume on the tickets A received.
 */
describe(
  'two Postfix hosts sharing single-use tickets through ticketbooth tlsmgrs on one Redis',
  { skip: missing('postfix', 'swaks', 'redis-server') },
  () => {
    test("tickets received by one host resume the other host's connections; none vended twice", async (t) => {
      const redis = await startRedisServer();
      running.push(() => redis.stop());
      const { dest, address } = await startTls13Destination();
      running.push(() => dest.stop());
      const store = { type: 'redis', url: redis.url, prefix: `two-postfix-${process.pid}:` };
      const hosts = [];
      for (let i = 0; i < 2; i++) {
        const { postfix, port } = await startSender(address, 'ticketbooth');
        running.push(() => postfix.stop());
        const tb = await startTicketboothTlsmgr(postfix, 'never', store);
        running.push(() => tb.tlsmgr.stop());
        hosts.push({ port, events: tb.events });
      }
      const ids: string[] = [];
      for (let i = 0; i < MESSAGES; i++) {
        ids.push(...(await sendMessages(hosts[i % 2].port, 1, `two-${i}`)));
        await dest.waitForDelivered(i + 1, 30_000);
      }
      assert.equal(dest.delivered().length, MESSAGES);
      const v = verdicts(dest, 0);
      const [a, b] = hosts;
      const fromAtoB = vended(b.events).filter((h) => stored(a.events).has(h)).length;
      const fromBtoA = vended(a.events).filter((h) => stored(b.events).has(h)).length;
      t.diagnostic(
        `${v.resumed}/${v.tls} resumed at the destination; tickets received by A used by B: ${fromAtoB}, by B used by A: ${fromBtoA}`,
      );
      assert.equal(v.tls, MESSAGES);
      assert.ok(Math.abs(v.resumed - MESSAGES / 2) <= 1, `resumed ${v.resumed}/${MESSAGES}: single use, one ticket per full handshake`);
      assert.ok(fromAtoB + fromBtoA > 0, 'one host resumed with tickets the other received');
      assert.equal(fromAtoB + fromBtoA, v.resumed, 'every resumption used a ticket the other host received');
      const all = [...vended(a.events), ...vended(b.events)];
      assert.equal(new Set(all).size, all.length, 'no ticket vended twice across the two hosts');
      assert.equal(all.length, v.resumed, 'every vended ticket resumed a connection (the destination agrees)');
    });
  },
);
