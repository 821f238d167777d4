import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { handshakeEventSchema } from '../../../src/audit/events.js';
import { count, countsBy, share, sum } from '../../../src/audit/report/figure-kinds.js';
import { conditionBits, group, Tabulation, type Table } from '../../../src/audit/report/figures.js';
import { isoTimeMs } from '../../../src/audit/report/iso-time.js';
import { readRecord, READERS } from '../../../src/audit/report/records.js';
import { handshakeLine } from '../../support/audit-lines.js';

/** Reading audit lines (records.ts): the hand-written fast path against the zod schemas, leniency. */

/** Values a field of a log line might hold, good or bad (`1e400` parses to Infinity). */
const ODD_VALUES = [
  'absent',
  '"x"',
  '""',
  '0',
  '2.5',
  '-1',
  '1e400',
  'true',
  'false',
  'null',
  '{}',
  '[]',
  '"TLSv1.3"',
  '"refused"',
  '"unknown"',
];

function withField(line: string, key: string, raw: string): unknown {
  const o = JSON.parse(line) as Record<string, unknown>;
  delete o[key];
  const text = JSON.stringify(o);
  return JSON.parse(raw === 'absent' ? text : `${text.slice(0, -1)},${JSON.stringify(key)}:${raw}}`);
}

/** Every variant of each base line with one field (or two) replaced by an odd value. */
function variants(bases: string[], keys: string[]): unknown[] {
  const out: unknown[] = bases.map((b): unknown => JSON.parse(b));
  for (const base of bases)
    for (const key of keys)
      for (const raw of ODD_VALUES) {
        const one = withField(base, key, raw);
        out.push(one);
        const other = keys[(keys.indexOf(key) + raw.length) % keys.length];
        out.push(withField(JSON.stringify(one), other, ODD_VALUES[(raw.length * 7) % ODD_VALUES.length]));
      }
  return out;
}

/** The fast path may take a line only when the schema would return its fields unchanged. */
function assertAgrees(event: string, lines: unknown[]): number {
  const reader = READERS.get(event)!;
  const keys = Object.keys((reader.schema as unknown as { shape: object }).shape);
  let fast = 0;
  for (const v of lines) {
    // readRecord picks the reader by `event`: a line of another event never meets this one.
    if ((v as { event?: unknown }).event !== event || !reader.isCurrent?.(v as never)) continue;
    fast++;
    const parsed = reader.schema.safeParse(v);
    assert.ok(parsed.success, `fast path took a line the schema refuses: ${JSON.stringify(v)}`);
    for (const k of keys) {
      assert.deepEqual((parsed.data as Record<string, unknown>)[k], (v as Record<string, unknown>)[k], `${k} in ${JSON.stringify(v)}`);
    }
  }
  return fast;
}

const HANDSHAKES = [
  handshakeLine(),
  handshakeLine({ offered: 'tls13-ticket', offeredHash: '0123456789ab', resumed: true, fullCause: undefined, ticketsReceived: 0 }),
  handshakeLine({ error: 'connect ECONNREFUSED', errorCode: 'ECONNREFUSED', protocol: undefined, ticketsUnreadable: 1 }),
];
const SMTP = [
  JSON.stringify({
    time: '2026-11-01T10:00:00.000Z',
    event: 'smtp.transaction',
    listener: 'l',
    client: 'c',
    nextHop: 'mx:25',
    recipients: 1,
    size: 2,
    code: 250,
    ms: 3,
  }),
  JSON.stringify({
    time: '2026-11-01T10:00:01.000Z',
    event: 'smtp.transaction',
    listener: 'l',
    client: 'c',
    nextHop: 'mx:25',
    recipients: 1,
    size: 2,
    code: 250,
    ms: 1,
    reused: { ageMs: 900, use: 2 },
  }),
];

describe('audit records', () => {
  test('lines as ticketbooth writes them are valid events and take the fast path', () => {
    for (const line of HANDSHAKES) assert.ok(handshakeEventSchema.safeParse(JSON.parse(line)).success, line);
    for (const line of [...HANDSHAKES, ...SMTP])
      assert.equal(READERS.get((JSON.parse(line) as { event: string }).event)!.isCurrent?.(JSON.parse(line) as never), true, line);
  });

  test('the fast path agrees with the schema, field for field', () => {
    const handshakeKeys = Object.keys(JSON.parse(HANDSHAKES[2]) as object).concat('fullCause', 'offeredHash', 'ticketsUnreadable');
    const fast = assertAgrees('tls.handshake', variants(HANDSHAKES, handshakeKeys));
    assert.ok(fast > 50, `fast path taken ${fast} times`);
    assert.ok(assertAgrees('smtp.transaction', variants(SMTP, ['code', 'time', 'nextHop', 'reused'])) > 5);
  });

  test('lenient: old lines without newer fields still count, wrong types are defaulted, no line throws', () => {
    const old = readRecord(JSON.stringify({ event: 'tls.handshake', destination: 'mx:25', offered: 'none', resumed: false }));
    assert.ok(typeof old === 'object' && old.event === 'tls.handshake');
    assert.equal(old.ticketsReceived, 0);
    assert.equal(old.fullCause, undefined);
    const odd = readRecord(
      JSON.stringify({
        event: 'tls.handshake',
        destination: 'mx:25',
        offered: 'new-kind',
        resumed: false,
        fullCause: 'new-cause',
        error: 42,
        reoffered: 'yes',
      }),
    );
    assert.ok(typeof odd === 'object' && odd.event === 'tls.handshake');
    assert.deepEqual([odd.offered, odd.fullCause, odd.error, odd.reoffered], ['new-kind', 'unknown', '42', false]);
    const stage = readRecord(JSON.stringify({ event: 'upstream.error', destination: 'mx:25', stage: 'tls' }));
    assert.ok(typeof stage === 'object' && stage.event === 'upstream.error' && stage.stage === 'other');
    const faults = [
      '',
      '  ',
      'nope',
      '[1]',
      '{"event":1}',
      '{"event":"tls.handshake","destination":"x"}',
      '{"event":"tls.handsh',
      '{"event":"later.kind"}',
    ];
    assert.deepEqual(faults.map(readRecord), [
      'blank',
      'blank',
      'malformed',
      'malformed',
      'malformed',
      'malformed',
      'truncated',
      'otherEvents',
    ]);
    for (const v of variants(HANDSHAKES, ['destination', 'resumed', 'offered', 'event']))
      assert.doesNotThrow(() => readRecord(JSON.stringify(v)));
  });
});

describe('statistics tables', () => {
  type R = { n: number };
  type C = 'any' | 'even' | 'big';
  const bits = conditionBits<C>(['any', 'even', 'big']);
  const TABLE = {
    lines: count('any'),
    evenShare: share('even', 'any', 2),
    byKind: countsBy(['even', 'big'] as const, (k) => k),
    sums: group({ all: sum('any', (r) => r.n), big: sum('big', (r) => r.n) }),
  } satisfies Table<R, C>;
  const tabulate = (ns: number[]): Tabulation<R, C, typeof TABLE> => {
    const t = new Tabulation<R, C, typeof TABLE>(TABLE, bits);
    for (const n of ns) t.add({ n }, bits.any | (n % 2 === 0 ? bits.even : 0) | (n > 10 ? bits.big : 0));
    return t;
  };

  test('one line a figure: counts, shares, counts by key, groups, in table order', () => {
    const v = tabulate([1, 2, 12, 20]).values();
    assert.deepEqual(v, { lines: 4, evenShare: 0.75, byKind: { even: 3, big: 2 }, sums: { all: 35, big: 32 } });
    assert.deepEqual(Object.keys(v), Object.keys(TABLE));
  });

  test('merging destinations adds every figure up', () => {
    const a = tabulate([1, 2]);
    a.merge(tabulate([12, 20]));
    assert.deepEqual(a.values(), tabulate([1, 2, 12, 20]).values());
    assert.equal(tabulate([]).values().evenShare, null);
  });
});

describe('times', () => {
  test("the logger's ISO form is read by hand exactly as Date.parse reads it; other forms by Date.parse", () => {
    const pad = (x: number, w: number): string => String(x).padStart(w, '0');
    const samples = [
      '',
      'garbage',
      '2026-11-01T10:00:00Z',
      '2026-11-01T10:00:00.000+01:00',
      '2026-11-01T24:00:00.000Z',
      '0047-04-08T00:07:04.709Z',
      '2026-02-30T00:00:00.000Z',
    ];
    for (let i = 0; i < 2000; i++) samples.push(new Date(i * 7_919_000_000 - 3e12).toISOString());
    for (let i = 0; i < 2000; i++) {
      const r = (m: number): number => (i * 7919 + m * 104_729) % m;
      samples.push(
        `${pad(r(10000), 4)}-${pad(r(15), 2)}-${pad(r(34), 2)}T${pad(r(27), 2)}:${pad(r(62), 2)}:${pad(r(61), 2)}.${pad(r(1000), 3)}Z`,
      );
    }
    for (const s of samples) assert.ok(Object.is(isoTimeMs(s), Date.parse(s)), s);
  });
});
