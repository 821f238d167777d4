import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { keyOf } from '../../../src/upstream/tls-target.js';
import { MemoryTicketStore } from '../../../src/resumption/memory-store.js';
import { fullHandshakeCause, ResumptionCache, type PolicyOptions } from '../../../src/resumption/policy.js';
import { parseSession } from '../../../src/resumption/session-der.js';
import { ticketHash } from '../../../src/resumption/ticket-hash.js';

/**
 * The resumption policy on real sessions captured from a Node TLS server (fixtures, 300 s
 * lifetime; see capture-series.mjs), with an injected clock: order, cap, single use, expiry,
 * TLS 1.2 multi-use, adaptive reuse. The same policy against live servers is in test/policy.test.ts.
 */

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'sessions');
const tls13 = [0, 1, 2, 3, 4, 5].map((i) => readFileSync(join(dir, `series-tls13-${i}.bin`)));
const tls12 = [0, 1].map((i) => readFileSync(join(dir, `series-tls12-${i}.bin`)));
const issuedMs = Math.max(...[...tls13, ...tls12].map((b) => parseSession(b).issuedAt)) * 1000;
const KEY = keyOf({ host: '127.0.0.1', port: 1, servername: 'localhost', verify: 'name' });
const hashOf = (b: Buffer): string => ticketHash(parseSession(b).ticket!);

function policy(opts: Partial<PolicyOptions> = {}, clock = { now: issuedMs }): ResumptionCache {
  const options = { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' as const, ...opts };
  return new ResumptionCache(new MemoryTicketStore(100), options, () => clock.now);
}

describe('resumption policy (captured sessions, injected clock)', () => {
  test('the fixtures: six distinct TLS 1.3 tickets and two TLS 1.2 sessions, 300 s lifetime', () => {
    assert.equal(new Set(tls13.map(hashOf)).size, 6);
    for (const b of tls13) assert.deepEqual([parseSession(b).version, parseSession(b).lifetimeHint], ['TLSv1.3', 300]);
    for (const b of tls12) assert.equal(parseSession(b).version, 'TLSv1.2');
  });

  test('TLS 1.3 tickets: newest first, capped (the oldest trimmed), each offered once', async () => {
    const cache = policy({ ticketsPerDestination: 4 });
    for (const b of tls13) assert.equal((await cache.received(KEY, b)).kind, 'stored');
    assert.equal(await cache.ticketsLeft(KEY), 4);
    const offered: string[] = [];
    for (let i = 0; i < 4; i++) {
      const o = await cache.offer(KEY);
      assert.deepEqual([o.kind, o.reoffered], ['tls13-ticket', false]);
      offered.push(o.hash!);
    }
    assert.deepEqual(offered, [tls13[5], tls13[4], tls13[3], tls13[2]].map(hashOf));
    const empty = await cache.offer(KEY);
    assert.deepEqual([empty.kind, empty.emptyBecause], ['none', 'empty']);
  });

  test('take before offer: 10 concurrent offers never get the same ticket', async () => {
    const cache = policy();
    for (const b of tls13) await cache.received(KEY, b);
    const offers = await Promise.all(Array.from({ length: 10 }, () => cache.offer(KEY)));
    const hashes = offers.filter((o) => o.kind === 'tls13-ticket').map((o) => o.hash);
    assert.equal(hashes.length, 6);
    assert.equal(new Set(hashes).size, 6);
  });

  test('expiry from the lifetime hint; maxAgeSeconds caps it; a session past its lifetime is not stored', async () => {
    const clock = { now: issuedMs };
    const cache = policy({}, clock);
    await cache.received(KEY, tls13[5]);
    clock.now = issuedMs + 299_000;
    assert.equal((await cache.offer(KEY)).kind, 'tls13-ticket');
    await cache.received(KEY, tls13[4]);
    clock.now = issuedMs + 300_000;
    const late = await cache.offer(KEY);
    assert.deepEqual([late.kind, late.emptyBecause], ['none', 'expired']);
    assert.equal(await cache.outcome(KEY, late, { resumed: false, version: 'TLSv1.3' }), 'expired');
    assert.equal((await cache.received(KEY, tls13[3])).kind, 'not-resumable');

    const capped = { now: issuedMs };
    const short = policy({ maxAgeSeconds: 60 }, capped);
    await short.received(KEY, tls13[5]);
    capped.now = issuedMs + 61_000;
    assert.equal((await short.offer(KEY)).kind, 'none');
  });

  test('TLS 1.2: one multi-use session, offered again and again, replaced by a newer one', async () => {
    const cache = policy();
    await cache.received(KEY, tls12[0]);
    for (let i = 0; i < 3; i++) assert.equal((await cache.offer(KEY)).hash, ticketHash(parseSession(tls12[0]).ticket!));
    await cache.received(KEY, tls12[1]);
    assert.equal((await cache.offer(KEY)).hash, ticketHash(parseSession(tls12[1]).ticket!));
  });

  test('adaptive reuse: with no fresh ticket the newest spent one is offered again, until one refusal', async () => {
    const cache = policy({ reuse: 'adaptive' });
    await cache.received(KEY, tls13[0]);
    const first = await cache.offer(KEY);
    assert.equal(first.reoffered, false);
    await cache.outcome(KEY, first, { resumed: true, version: 'TLSv1.3' });
    const again = await cache.offer(KEY);
    assert.deepEqual([again.kind, again.hash, again.reoffered], ['tls13-ticket', first.hash, true]);
    assert.equal(await cache.outcome(KEY, again, { resumed: false, version: 'TLSv1.3' }), 'refused');
    assert.equal((await cache.offer(KEY)).kind, 'none', 'never again after a refusal');
    assert.equal((await policy({ reuse: 'never' }).offer(KEY)).kind, 'none');
  });

  test('why a handshake was full', () => {
    const t13 = { kind: 'tls13-ticket' as const, reoffered: false };
    assert.equal(fullHandshakeCause(t13, { resumed: true, version: 'TLSv1.3' }), undefined);
    assert.equal(fullHandshakeCause(t13, { resumed: false, version: 'TLSv1.3' }), 'refused');
    assert.equal(fullHandshakeCause(t13, { resumed: false, version: 'TLSv1.2' }), 'version-mismatch');
    assert.equal(fullHandshakeCause({ kind: 'none', reoffered: false, emptyBecause: 'empty' }, { resumed: false }), 'nothing-offered');
    assert.equal(fullHandshakeCause({ kind: 'none', reoffered: false, emptyBecause: 'expired' }, { resumed: false }), 'expired');
  });
});
