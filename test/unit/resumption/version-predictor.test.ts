import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { MemoryTicketStore } from '../../../src/resumption/memory-store.js';
import { ResumptionCache, type Offer } from '../../../src/resumption/policy.js';
import { appendVersion, type NegotiatedVersion, type StoredTicket } from '../../../src/resumption/store.js';
import { HISTORY_PLACES, period, predictNext, VersionPredictor, type Turn } from '../../../src/resumption/version-predictor.js';
import { dialTls } from '../../../src/upstream/tls-dialer.js';
import { keyOf, type TlsTarget } from '../../../src/upstream/tls-target.js';
import { freeTcpPort } from '../../support/ports.js';

/**
 * The version predictor for version-mixed destinations (a balancer over TLS 1.2 and TLS 1.3 nodes),
 * with no external program: histories in offer order (`2`/`3` known, `.` in flight, `?` unknown), a
 * round-robin balancer simulated under concurrency, and the policy's offer order.
 */

const V = (c: '2' | '3'): NegotiatedVersion => (c === '2' ? 'TLSv1.2' : 'TLSv1.3');
const digit = (v: NegotiatedVersion): '2' | '3' => (v === 'TLSv1.2' ? '2' : '3');

/** A seeded generator: the same "random" completion orders every run. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

function shuffled<T>(xs: T[], rnd: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('predictNext: histories in offer order', () => {
  test('round robin over one node of each, no gaps: the other version comes next', () => {
    assert.equal(predictNext('2323', ''), 'TLSv1.2');
    assert.equal(predictNext('23232', ''), 'TLSv1.3');
    assert.equal(period('23232323'), 2);
  });

  test('period 1: the one version', () => {
    assert.equal(period('3333'), 1);
    assert.equal(predictNext('3333', '2222'), 'TLSv1.3', 'its own history outweighs the shared one');
    assert.equal(predictNext('22222222', ''), 'TLSv1.2');
  });

  test('period 3 (two TLS 1.2 nodes, one TLS 1.3 node)', () => {
    assert.equal(period('223223'), 3);
    assert.equal(predictNext('223223', ''), 'TLSv1.2');
    assert.equal(predictNext('2232232', ''), 'TLSv1.2');
    assert.equal(predictNext('22322322', ''), 'TLSv1.3');
  });

  test('with gaps: places in flight are unknown, the newest known place one or more periods back decides', () => {
    // Round of 8 just offered after a finished round: v(15) = v(13) = ... = v(7).
    assert.equal(predictNext('23232323.......', ''), 'TLSv1.3');
    assert.equal(predictNext('23232323........', ''), 'TLSv1.2');
    // Completions scrambled: some of this round known, some not.
    assert.equal(predictNext('232323232.2..3.', ''), 'TLSv1.3');
    // Failed handshakes (`?`) keep their place and simply say nothing.
    assert.equal(predictNext('2?2?2?2.', ''), 'TLSv1.2');
    assert.equal(predictNext('23?323?3', ''), 'TLSv1.2');
  });

  test('noise: one swapped pair keeps the alternation; a random mix falls back to the majority', () => {
    assert.equal(period('2323232332232323'), 2);
    assert.equal(predictNext('2323232332232323', ''), 'TLSv1.2');
    assert.equal(period('2222322223'), undefined);
    assert.equal(predictNext('2222322223', ''), 'TLSv1.2');
    // Online over a long random sequence: about as good as always guessing the commoner version.
    for (const q of [0.5, 0.7, 0.8]) {
      const rnd = lcg(7);
      let hist = '';
      let right = 0;
      for (let i = 0; i < 2000; i++) {
        const v = rnd() < q ? '2' : '3';
        if (digit(predictNext(hist.slice(-HISTORY_PLACES), '')) === v) right++;
        hist += v;
      }
      assert.ok(right / 2000 >= q - 0.05, `q=${q}: ${right}/2000`);
    }
  });

  test('too little local history: the shared (completion-ordered) versions decide', () => {
    assert.equal(predictNext('', ''), 'TLSv1.3', 'nothing known: TLS 1.3');
    // Nothing in flight here: completion order is offer order, what followed the last version counts.
    assert.equal(predictNext('', '2323'), 'TLSv1.2');
    assert.equal(predictNext('23', '23232'), 'TLSv1.3');
    // Offers in flight: completion order says nothing about order, only the counts are trusted.
    assert.equal(predictNext('...', '23232'), 'TLSv1.2');
    assert.equal(predictNext('...', '2323'), 'TLSv1.3', 'a tie goes to TLS 1.3');
    // Four known places are enough to overrule the shared history.
    assert.equal(predictNext('3232', '22222222'), 'TLSv1.3');
  });
});

describe('VersionPredictor: places in offer order', () => {
  const MIXED = '23';

  test('only destinations that negotiated both versions get state; the number kept is bounded', () => {
    const vp = new VersionPredictor(3);
    assert.equal(vp.reserve('a', '').place, undefined);
    assert.equal(vp.reserve('a', '2222').place, undefined);
    assert.equal(vp.size, 0);
    for (let i = 0; i < 10; i++) assert.ok(vp.reserve(`k${i}`, MIXED).place);
    assert.equal(vp.size, 3);
    assert.ok(vp.reserve('k9', '').place, 'once tracked, tracked without the shared history');
  });

  /** Offers `n` connections at once, then settles them in `order`; returns the predictions. */
  const round = (vp: VersionPredictor, key: string, shared: string, versions: string): Turn[] => {
    const turns = [...versions].map(() => vp.reserve(key, shared));
    for (const [i, t] of turns.entries()) {
      void t.place!.inTurn();
      t.place!.settle(V(versions[i] as '2' | '3'));
    }
    return turns;
  };

  test('a dial that never reached the server leaves the order; one that did keeps its place as unknown', () => {
    const vp = new VersionPredictor();
    round(vp, 'k', MIXED, '2323');
    const lost = vp.reserve('k', MIXED);
    assert.equal(lost.expect, 'TLSv1.2');
    lost.place!.release(false); // connection refused: the balancer never saw it
    assert.equal(vp.reserve('k', MIXED).expect, 'TLSv1.2', 'the same place again');

    const vp2 = new VersionPredictor();
    round(vp2, 'k', MIXED, '2323');
    vp2.reserve('k', MIXED).place!.release(true); // TCP up, handshake failed: the balancer counted it
    assert.equal(vp2.reserve('k', MIXED).expect, 'TLSv1.3');
  });

  test('a place never settled does not wedge the history: it ages out of the ring', () => {
    const vp = new VersionPredictor();
    round(vp, 'k', MIXED, '2323');
    const lost = vp.reserve('k', MIXED).place!; // never settled (its version would have been 2)
    let right = 0;
    const n = HISTORY_PLACES * 2;
    for (let i = 0; i < n; i++) {
      const want = i % 2 === 0 ? '3' : '2';
      const t = vp.reserve('k', MIXED);
      if (digit(t.expect) === want) right++;
      void t.place!.inTurn();
      t.place!.settle(V(want));
    }
    assert.equal(right, n);
    // Settling it now, long after, changes nothing (its slot in the ring holds a newer place).
    lost.settle('TLSv1.3');
    assert.equal(vp.reserve('k', MIXED).expect, 'TLSv1.3');
  });

  /**
   * A round-robin balancer over one node of each: nodes go by offer order, handshakes finish in a
   * shuffled order, and the store's shared versions (what the old predictor read) by completion.
   */
  const simulate = (rounds: number, parallel: number, seed: number): { right: number; counted: number } => {
    const vp = new VersionPredictor();
    const rnd = lcg(seed);
    let shared = '';
    let rr = 0;
    let right = 0;
    let counted = 0;
    for (let r = 0; r < rounds; r++) {
      const turns = Array.from({ length: parallel }, () => vp.reserve('lb', shared));
      const versions = turns.map((): NegotiatedVersion => (rr++ % 2 === 0 ? 'TLSv1.2' : 'TLSv1.3'));
      if (r > 0) {
        counted += parallel;
        right += turns.filter((t, i) => t.expect === versions[i]).length;
      }
      for (const t of turns) void t.place?.inTurn();
      for (const i of shuffled([...turns.keys()], rnd)) {
        turns[i].place?.settle(versions[i]);
        shared = appendVersion(shared, versions[i]);
      }
    }
    return { right, counted };
  };

  test('8 concurrent x 10 rounds, completions shuffled: rounds 2-10 nearly all right', () => {
    for (const seed of [1, 2, 3]) {
      const { right, counted } = simulate(10, 8, seed);
      assert.equal(counted, 72);
      // Round 1 makes the destination mixed; round 2 learns; from round 3 on, all are right.
      assert.ok(right >= 64, `seed ${seed}: ${right}/72`);
    }
  });

  test('60 sequential: right from the fourth connection on', () => {
    const { right, counted } = simulate(60, 1, 1);
    assert.equal(counted, 59);
    assert.ok(right >= 57, `${right}/59`);
  });
});

describe('ResumptionCache on a version-mixed destination (no TLS server: opaque session buffers)', () => {
  const KEY = keyOf({ host: '127.0.0.1', port: 1, servername: 'localhost', verify: 'name' });
  const FAR = Date.now() + 3600_000;
  const entry = (name: string): StoredTicket => ({ session: Buffer.from(name), hash: name, expiresAt: FAR });

  /** A memory store whose first TLS 1.2 read answers only when released: store calls finish out of order. */
  class SlowFirstRead extends MemoryTicketStore {
    release!: () => void;
    private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
    private reads = 0;
    override async tls12Session(key: string, now: number): Promise<StoredTicket | undefined> {
      if (this.reads++ === 0) await this.gate;
      return super.tls12Session(key, now);
    }
  }

  const mixedStore = async <S extends MemoryTicketStore>(store: S, key = KEY): Promise<S> => {
    await store.learn(key.id, 'TLSv1.2', false);
    await store.learn(key.id, 'TLSv1.3', false);
    await store.setTls12Session(key.id, entry('tls12'));
    for (let i = 0; i < 8; i++) await store.insertTls13Ticket(key.id, entry(`t${i}`), 8, Date.now());
    return store;
  };
  const options = { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' as const };

  test('offers to one mixed destination resolve in the order they were asked for, whatever the store does', async () => {
    const store = await mixedStore(new SlowFirstRead(10));
    const cache = new ResumptionCache(store, options);
    const resolved: number[] = [];
    const offers = [0, 1, 2, 3].map((i) => cache.offer(KEY).then((o) => (resolved.push(i), o)));
    // Every microtask has run by the next macrotask: without the ordering, 1-3 would be out by now.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(resolved, []);
    store.release();
    await Promise.all(offers);
    assert.deepEqual(resolved, [0, 1, 2, 3]);
  });

  test('a round-robin balancer seen through offer() and outcome(): 8 at once x 10 rounds', async () => {
    const store = await mixedStore(new MemoryTicketStore(10));
    const cache = new ResumptionCache(store, options);
    const rnd = lcg(5);
    let rr = 0;
    let right = 0;
    let n = 0;
    for (let r = 0; r < 10; r++) {
      // The balancer assigns nodes in connection order, which is the order offers resolve in.
      const order: Offer[] = [];
      await Promise.all(Array.from({ length: 8 }, () => cache.offer(KEY).then((o) => order.push(o))));
      const versions = order.map((): NegotiatedVersion => (rr++ % 2 === 0 ? 'TLSv1.2' : 'TLSv1.3'));
      for (const i of shuffled([...order.keys()], rnd)) {
        const offer = order[i];
        const version = versions[i];
        const resumed = offer.kind === (version === 'TLSv1.2' ? 'tls12-session' : 'tls13-ticket');
        if (r > 0) {
          n++;
          if (resumed) right++;
        }
        // The TLS 1.3 node renews on resumption and hands out two tickets after a full handshake.
        if (version === 'TLSv1.3')
          for (let k = 0; k < (resumed ? 1 : 2); k++) await store.insertTls13Ticket(KEY.id, entry(`r${r}-${i}-${k}`), 8, Date.now());
        assert.equal(await cache.outcome(KEY, offer, { resumed, version }), resumed ? undefined : 'version-mismatch');
      }
    }
    assert.equal(n, 72);
    assert.ok(right >= 64, `${right}/72`);
  });

  test('abandoned offers: one that never reached the server leaves the order, one that did keeps its place', async () => {
    for (const reachedServer of [false, true]) {
      const store = await mixedStore(new MemoryTicketStore(10));
      const cache = new ResumptionCache(store, options);
      for (const version of ['TLSv1.2', 'TLSv1.3', 'TLSv1.2', 'TLSv1.3'] as const) {
        const o = await cache.offer(KEY);
        await cache.outcome(KEY, o, { resumed: o.kind === (version === 'TLSv1.2' ? 'tls12-session' : 'tls13-ticket'), version });
      }
      cache.abandoned(await cache.offer(KEY), reachedServer);
      await store.insertTls13Ticket(KEY.id, entry('fresh'), 8, Date.now());
      // Round robin: 2 3 2 3, then TLS 1.2 for a connection the balancer never saw, TLS 1.3 after one it did.
      assert.equal((await cache.offer(KEY)).kind, reachedServer ? 'tls13-ticket' : 'tls12-session', `reachedServer ${reachedServer}`);
    }
  });

  test('the dialer gives a failed dial back: refused leaves the order, a handshake cut short keeps its place', async () => {
    // A TCP server that closes every connection at once: TCP up, no handshake (a balancer with no node left).
    const closer = createServer((c) => c.destroy());
    await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve));
    const closerPort = (closer.address() as { port: number }).port;
    const refusedPort = await freeTcpPort();
    try {
      for (const [port, reachedServer] of [
        [refusedPort, false],
        [closerPort, true],
      ] as const) {
        const target: TlsTarget = { host: '127.0.0.1', port, servername: 'localhost', verify: 'name' };
        const key = keyOf(target);
        const store = await mixedStore(new MemoryTicketStore(10), key);
        const cache = new ResumptionCache(store, options);
        for (const version of ['TLSv1.2', 'TLSv1.3', 'TLSv1.2', 'TLSv1.3'] as const) {
          const o = await cache.offer(key);
          await cache.outcome(key, o, { resumed: o.kind === (version === 'TLSv1.2' ? 'tls12-session' : 'tls13-ticket'), version });
        }
        const audit = new AuditLog();
        await assert.rejects(dialTls(target, { listener: 'test', cache, audit, handshakeTimeoutMs: 5000 }));
        await audit.close();
        await store.insertTls13Ticket(key.id, entry('fresh'), 8, Date.now());
        assert.equal((await cache.offer(key)).kind, reachedServer ? 'tls13-ticket' : 'tls12-session', `port ${port}`);
      }
    } finally {
      await new Promise<void>((resolve) => closer.close(() => resolve()));
    }
  });
});
