import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { AuditEvent, TlsmgrLookupEvent, TlsmgrUpdateEvent } from '../../src/audit/events.js';
import type { RunningTlsmgr } from '../../src/tlsmgr/command.js';
import { missing } from '../support/interop.js';
import type { Postfix } from '../support/postfix.js';
import { sendMessages, startSender, startTicketboothTlsmgr, startTls13Destination, verdicts } from '../support/postfix-tlsmgr.js';

const MESSAGES = 30;

/**
 * Debian's Postfix on both sides, with its own TLS: a sender (`smtp_tls_security_level = may`,
 * one message per connection, one at a time) and a TLS 1.3 destination that issues one ticket per
 * full handshake and none on a resumed one. Only the sender's session cache changes: the stock
 * tlsmgr(8), or ticketbooth's tlsmgr mode behind `tlsmgr_service_name = ticketbooth`.
 */
interface Run {
  dest: Postfix;
  sender: Postfix;
  tlsmgr?: RunningTlsmgr;
  events: AuditEvent[];
  ids: string[];
}

const running: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of running.reverse()) await stop().catch(() => undefined);
});

async function deliver(tag: string, reuse?: 'never' | 'adaptive', midRun?: (r: Run) => Promise<void>): Promise<Run> {
  const { dest, address } = await startTls13Destination();
  running.push(() => dest.stop());
  const { postfix: sender, port } = await startSender(address, reuse ? 'ticketbooth' : undefined);
  running.push(() => sender.stop());
  const run: Run = { dest, sender, events: [], ids: [] };
  if (reuse) {
    const tb = await startTicketboothTlsmgr(sender, reuse);
    run.tlsmgr = tb.tlsmgr;
    run.events = tb.events;
    running.push(() => tb.tlsmgr.stop());
  }
  // One at a time, each delivered before the next is sent: the cache sees connections in order.
  for (let i = 0; i < MESSAGES; i++) {
    if (i === MESSAGES / 2 && midRun) await midRun(run);
    run.ids.push(...(await sendMessages(port, 1, `${tag}-${i}`)));
    await dest.waitForDelivered(i + 1, 30_000);
  }
  return run;
}

function assertEachOnce(dest: Postfix, ids: string[]): void {
  const seen = dest.delivered().map((f) => /^Message-Id: <([^>]+)>/im.exec(readFileSync(f, 'utf8'))?.[1]);
  assert.deepEqual(seen.sort(), ids.map((id) => `${id}@legacy.test`).sort(), 'each message delivered exactly once');
}

const lookups = (events: AuditEvent[]): TlsmgrLookupEvent[] => events.filter((e): e is TlsmgrLookupEvent => e.event === 'tlsmgr.lookup');
const updates = (events: AuditEvent[]): TlsmgrUpdateEvent[] => events.filter((e): e is TlsmgrUpdateEvent => e.event === 'tlsmgr.update');

describe('Postfix (own TLS) → Postfix (TLS 1.3): the sender session cache', { skip: missing('postfix', 'swaks') }, () => {
  test('stock tlsmgr: resumes nearly every connection on one ticket, reused again and again', async (t) => {
    const { dest, sender, ids } = await deliver('stock');
    assertEachOnce(dest, ids);
    const v = verdicts(dest, 0);
    // smtp(8) saves a session only when a handshake brings a ticket: a full handshake here.
    const saved = (sender.log().match(/save session .* to smtp cache/g) ?? []).length;
    t.diagnostic(`stock tlsmgr: ${v.resumed}/${v.tls} resumed, ${saved} ticket(s) received and stored`);
    assert.equal(v.tls, MESSAGES);
    assert.ok(v.resumed >= MESSAGES - 2, `resumed ${v.resumed}/${MESSAGES}`);
    assert.equal(saved, MESSAGES - v.resumed, 'every resumption used a ticket received earlier: one ticket per full handshake');
  });

  test('ticketbooth tlsmgr, reuse never: every other connection resumes, no ticket vended twice', async (t) => {
    const { dest, ids, events } = await deliver('never', 'never');
    assertEachOnce(dest, ids);
    const v = verdicts(dest, 0);
    const vended = lookups(events).filter((e) => e.vended === 'tls13-ticket');
    t.diagnostic(`never: ${v.resumed}/${v.tls} resumed; ${lookups(events).length} lookups, ${vended.length} tickets vended`);
    assert.equal(v.tls, MESSAGES);
    assert.ok(Math.abs(v.resumed - MESSAGES / 2) <= 1, `resumed ${v.resumed}/${MESSAGES}, single use allows every other one`);
    const hashes = vended.map((e) => e.ticketHash);
    assert.equal(new Set(hashes).size, hashes.length, 'no ticket vended twice');
    assert.ok(vended.every((e) => !e.reoffered));
    assert.equal(vended.length, v.resumed, 'every vended ticket resumed');
    assert.equal(lookups(events).length, MESSAGES, 'one lookup per connection');
    assert.equal(updates(events).filter((e) => e.result === 'stored' && e.version === 'TLSv1.3').length, MESSAGES - v.resumed);
  });

  test('ticketbooth tlsmgr, reuse adaptive: nearly every connection resumes; re-offers are marked', async (t) => {
    const { dest, ids, events } = await deliver('adaptive', 'adaptive');
    assertEachOnce(dest, ids);
    const v = verdicts(dest, 0);
    const reoffered = lookups(events).filter((e) => e.reoffered).length;
    t.diagnostic(`adaptive: ${v.resumed}/${v.tls} resumed; ${reoffered} re-offers`);
    assert.equal(v.tls, MESSAGES);
    assert.ok(v.resumed >= MESSAGES - 2, `resumed ${v.resumed}/${MESSAGES}`);
    const fresh = lookups(events)
      .filter((e) => e.vended === 'tls13-ticket' && !e.reoffered)
      .map((e) => e.ticketHash);
    assert.equal(new Set(fresh).size, fresh.length, 'each ticket vended fresh at most once');
  });

  test('ticketbooth stopped mid-run: Postfix keeps delivering with full handshakes, nothing lost', async (t) => {
    let resumedBefore = 0;
    const { dest, ids, sender } = await deliver('stopped', 'never', async (r) => {
      resumedBefore = verdicts(r.dest, 0).resumed;
      await r.tlsmgr?.stop();
    });
    assertEachOnce(dest, ids);
    const v = verdicts(dest, 0);
    const warnings = (sender.log().match(/problem talking to server private\/ticketbooth/g) ?? []).length;
    t.diagnostic(
      `stopped at ${MESSAGES / 2}: ${resumedBefore} resumed before, ${v.resumed - resumedBefore} after; ${warnings} smtp(8) warnings`,
    );
    assert.equal(v.tls, MESSAGES, 'every connection still used TLS');
    assert.equal(v.resumed, resumedBefore, 'no resumption without the cache');
    assert.ok(warnings > 0, 'smtp(8) logged that the cache is away');
  });
});
