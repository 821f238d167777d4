import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import type { HandshakeEvent } from '../../../src/audit/events.js';
import { Aggregator } from '../../../src/audit/report/aggregate.js';
import { LogHistogram } from '../../../src/audit/report/histogram.js';
import { OfferedTickets } from '../../../src/audit/report/offered-tickets.js';
import type { AuditReport } from '../../../src/audit/report/report.js';
import { formatHtml } from '../../../src/audit/report/format-html.js';
import { widthText } from '../../../src/audit/report/headline.js';
import { formatText } from '../../../src/audit/report/format-text.js';
import { auditReport } from '../../../src/audit/report/run-report.js';
import { BUCKET_WIDTHS_S, Series, TimeAxis } from '../../../src/audit/report/time-series.js';
import { handshakeLine } from '../../support/audit-lines.js';

/** The report on small hand-written logs: malformed input, filters, gzip, the bounded structures. */

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tb-report-'));
let n = 0;

const hs = (over: Partial<HandshakeEvent>): string => handshakeLine({ cipher: 'TLS_AES_128_GCM_SHA256', ...over });

function file(lines: string[], gz = false, name = `log-${n++}${gz ? '.gz' : '.jsonl'}`): string {
  const path = join(dir, name);
  const text = lines.join('\n') + '\n';
  writeFileSync(path, gz ? gzipSync(text) : text);
  return path;
}

const minute = (m: number): string => new Date(Date.UTC(2026, 10, 1, 10, m)).toISOString();

const sample = [
  hs({ time: minute(0) }),
  hs({
    time: minute(1),
    offered: 'tls13-ticket',
    offeredHash: 'aaaaaaaaaaa1',
    resumed: true,
    fullCause: undefined,
    ticketsReceived: 0,
    ticketsLeft: 1,
    handshakeMs: 1,
  }),
  hs({ time: minute(2), destination: 'mx.b.test:25', protocol: 'TLSv1.2', ticketsReceived: 1, ticketsLeft: 0, handshakeMs: 3 }),
  // The one TLS 1.2 session, resumed twice.
  ...[3, 4].map((m) =>
    hs({
      time: minute(m),
      destination: 'mx.b.test:25',
      offered: 'tls12-session',
      offeredHash: 'bbbbbbbbbbb1',
      resumed: true,
      fullCause: undefined,
      protocol: 'TLSv1.2',
      ticketsReceived: 0,
      ticketsLeft: 0,
      handshakeMs: 1.5,
    }),
  ),
  hs({
    time: minute(5),
    error: 'mx.c.test:25: connect ECONNREFUSED 127.0.0.1:25',
    destination: 'mx.c.test:25',
    protocol: undefined,
    fullCause: undefined,
    ticketsReceived: 0,
    ticketsLeft: 0,
  }),
  JSON.stringify({
    time: minute(6),
    event: 'smtp.transaction',
    listener: 'l',
    client: '127.0.0.1:5000',
    nextHop: 'mx.a.test:25',
    recipients: 1,
    size: 10,
    code: 250,
    ms: 5,
  }),
  JSON.stringify({
    time: minute(6),
    event: 'smtp.transaction',
    listener: 'l',
    client: '127.0.0.1:5001',
    nextHop: 'mx.a.test:25',
    recipients: 1,
    size: 10,
    code: 250,
    ms: 1,
    reused: { ageMs: 800, use: 2 },
  }),
  JSON.stringify({ time: minute(7), event: 'client.refused', listener: 'l', client: '10.0.0.1:5', reason: 'allow-list' }),
];

/** An `smtp.transaction` line to `nextHop` with `code`, and `extra` fields (a `dane` or `sts` object). */
function transactionLine(nextHop: string, code: number, extra: Record<string, unknown>): string {
  return JSON.stringify({
    time: minute(1),
    event: 'smtp.transaction',
    listener: 'l',
    client: '127.0.0.1:1',
    nextHop,
    recipients: 1,
    size: 9,
    code,
    ms: 3,
    ...extra,
  });
}

describe('audit report on hand-written logs', () => {
  test('counts malformed and truncated lines and goes on', async () => {
    const f = file([
      sample[0],
      'not json at all',
      '{"event": 42}',
      '[1,2,3]',
      JSON.stringify({ event: 'tls.handshake', destination: 'x:1' }), // no resumed/offered: not countable
      JSON.stringify({ event: 'something.new', time: minute(1) }),
      '',
      sample[1],
      sample[2].slice(0, 80), // cut off mid-record, as after a crash
    ]);
    const r = await auditReport({ files: [f], format: 'json' });
    assert.equal(r.input.lines, 9);
    assert.equal(r.input.malformed, 4);
    assert.equal(r.input.truncated, 1);
    assert.equal(r.input.otherEvents, 1);
    assert.equal(r.input.blank, 1);
    assert.equal(r.overall.connections, 2);
    assert.equal(r.overall.resumed, 1);
  });

  test('DANE outcomes per next hop: the level each host got and how it ended, in JSON and text', async () => {
    const tx = (nextHop: string, code: number, dane: unknown): string => transactionLine(nextHop, code, { dane });
    const verified = {
      level: 'dane',
      applied: 'dane',
      mxDnssec: 'secure',
      tlsa: 'usable',
      records: 1,
      auth: 'Verified',
      matched: '3 1 1 ab depth 0',
    };
    const bogus = { level: 'dane', applied: 'defer', mxDnssec: 'secure', tlsa: 'failed', reason: 'dnssec-bogus' };
    const r = await auditReport({
      files: [
        file([
          tx('mx.d.test[127.0.0.2]:25', 250, verified),
          tx('mx.d.test[127.0.0.2]:25', 250, verified),
          tx('d.test:25', 451, bogus),
          tx('d.test:25', 451, 5),
        ]),
      ],
      format: 'json',
    });
    const hops = Object.fromEntries(r.overall.smtp.byNextHop.map((h) => [h.nextHop, h.dane]));
    // A `dane` of the wrong shape still counts the transaction, without an outcome.
    assert.equal(r.overall.smtp.transactions, 4);
    assert.deepEqual(hops, { 'mx.d.test[127.0.0.2]:25': { 'dane:Verified': 2 }, 'd.test:25': { 'defer:dnssec-bogus': 1 } });
    assert.match(formatText(r), /to mx\.d\.test\[127\.0\.0\.2\]:25: 2, .*\n {6}DANE: dane:Verified 2/);
  });

  test('LMTP fan-out: each hop part counts at its next hop; the parts are told apart with the client transactions they make up', async () => {
    const part = (nextHop: string, code: number, hops?: number): string => transactionLine(nextHop, code, hops ? { hops } : {});
    const r = await auditReport({
      files: [
        file([
          ...['a.test:25', 'b.test:25', 'c.test:25'].map((h, i) => part(h, i === 1 ? 554 : 250, 3)),
          part('a.test:25', 250, 2),
          part('b.test:25', 250, 2),
          part('a.test:25', 250),
        ]),
      ],
      format: 'json',
    });
    assert.equal(r.overall.smtp.transactions, 6);
    assert.deepEqual(r.overall.smtp.byClass, { '2xx': 5, '5xx': 1 });
    assert.deepEqual(r.overall.smtp.fanOut, { parts: 5, clientTransactions: 2, partsByHops: { '3': 3, '2': 2 } });
    assert.match(formatText(r), /5 of them parts of 2 client transactions to several next hops \(by hops: 2 2, 3 3\)/);
  });

  test('tlsmgr mode: what Postfix was vended, what it stored, and any ticket vended fresh twice', async () => {
    const base = { time: minute(1), cacheType: 'smtp', cacheId: 'c1', destination: 'dest.test:25' };
    const lookup = (vended: string, reoffered: boolean, ticketHash?: string): string =>
      JSON.stringify({ event: 'tlsmgr.lookup', ...base, vended, reoffered, ...(ticketHash ? { ticketHash } : {}) });
    const update = (result: string, version?: string): string =>
      JSON.stringify({ event: 'tlsmgr.update', ...base, result, ...(version ? { version } : {}) });
    const r = await auditReport({
      files: [
        file([
          lookup('none', false),
          update('stored', 'TLSv1.3'),
          lookup('tls13-ticket', false, 'aaaa'),
          update('stored', 'TLSv1.3'),
          lookup('tls13-ticket', false, 'bbbb'),
          lookup('tls13-ticket', true, 'bbbb'),
          lookup('tls13-ticket', false, 'aaaa'),
          update('not-resumable'),
        ]),
      ],
      format: 'json',
    });
    assert.deepEqual(
      {
        lookups: r.tlsmgr?.lookups,
        vended: r.tlsmgr?.vended,
        updates: r.tlsmgr?.updates,
        tls13: r.tlsmgr?.storedTls13,
        twice: r.tlsmgr?.vendedTwice,
      },
      {
        lookups: 5,
        vended: { none: 1, 'tls13-ticket': 3, 'tls13-reoffered': 1 },
        updates: { stored: 2, 'not-resumable': 1 },
        tls13: 2,
        twice: 1,
      },
    );
    assert.match(formatText(r), /tlsmgr mode .*\n {2}lookups: 5 \(80% had a session to offer\)[\s\S]*tickets vended fresh twice: 1/);
  });

  test('MTA-STS outcomes per next hop: the mode and policy id in force, and the result', async () => {
    const tx = (nextHop: string, code: number, sts: unknown): string => transactionLine(nextHop, code, { sts });
    const ok = { domain: 's.test', mode: 'enforce', id: '7', mxHost: 'mx.s.test', mx: 'match', result: 'success' };
    const testing = { domain: 't.test', mode: 'testing', id: '1', mxHost: 'mx.t.test', mx: 'match', result: 'certificate-not-trusted' };
    const noPolicy = { domain: 'u.test', fetchFailure: 'sts-policy-fetch-error' };
    const r = await auditReport({
      files: [
        file([
          tx('mx.s.test[127.0.0.3]:25', 250, ok),
          tx('mx.t.test[127.0.0.4]:25', 250, testing),
          tx('mx.u.test[127.0.0.5]:25', 250, noPolicy),
        ]),
      ],
      format: 'json',
    });
    const hops = Object.fromEntries(r.overall.smtp.byNextHop.map((h) => [h.nextHop, h.sts]));
    assert.deepEqual(hops, {
      'mx.s.test[127.0.0.3]:25': { 'enforce(7):success': 1 },
      'mx.t.test[127.0.0.4]:25': { 'testing(1):certificate-not-trusted': 1 },
      'mx.u.test[127.0.0.5]:25': { 'no-policy:sts-policy-fetch-error': 1 },
    });
    assert.match(formatText(r), /MTA-STS: enforce\(7\):success 1/);
  });

  test('figures per destination: causes, versions, TLS 1.2 multi-use is no violation, errors by cause', async () => {
    const r = await auditReport({ files: [file(sample)], format: 'json' });
    assert.equal(r.overall.connections, 6);
    assert.equal(r.overall.failed, 1);
    assert.deepEqual(r.overall.errors, { connect: 1 });
    assert.deepEqual(r.overall.versions, { 'TLSv1.3': 2, 'TLSv1.2': 3 });
    assert.equal(r.overall.resumedShare, 0.6);
    assert.deepEqual(r.overall.smtp, {
      transactions: 2,
      byClass: { '2xx': 2 },
      reused: 1,
      byNextHop: [{ nextHop: 'mx.a.test:25', transactions: 2, reused: 1 }],
    });
    assert.match(
      formatText(r),
      /SMTP transactions: 2 \(2xx 2\); 1 \(50%\) on a cached connection, without a handshake\n {4}to mx\.a\.test:25: 2, 1 \(50%\)/,
    );
    assert.deepEqual(r.overall.clientsRefused, { 'allow-list': 1 });
    const b = r.destinations.find((d) => d.destination === 'mx.b.test:25')!;
    assert.deepEqual(b.singleUseViolations, { total: 0, adaptive: 0, unattributed: 0 }, 'a TLS 1.2 session is multi-use');
    assert.equal(b.verdict.ceiling, 1);
    assert.equal(b.verdict.ceilingBasis, 'TLS 1.2: one multi-use session');
    assert.deepEqual(b.verdict.phrases, ['TLS 1.2 only: one multi-use session']);
    const a = r.destinations.find((d) => d.destination === 'mx.a.test:25')!;
    assert.equal(a.verdict.ticketsPerFull, 2);
    assert.equal(a.verdict.renews, 'no');
    assert.equal(a.handshakeMs.full.p50, 2);
    assert.equal(a.handshakeMs.resumed.p50, 1);
    assert.deepEqual(
      r.destinations.map((d) => d.destination),
      ['mx.b.test:25', 'mx.a.test:25', 'mx.c.test:25'],
      'busiest first',
    );
  });

  test('a ticket offered twice: attributed to adaptive reuse or not', async () => {
    const r = await auditReport({
      files: [
        file([
          hs({ time: minute(0), offered: 'tls13-ticket', offeredHash: '0123456789ab', resumed: true, fullCause: undefined }),
          hs({ time: minute(1), offered: 'tls13-ticket', offeredHash: '0123456789ab', reoffered: true, fullCause: 'refused' }),
          hs({
            time: minute(2),
            offered: 'tls13-ticket',
            offeredHash: '0123456789ab',
            reoffered: false,
            resumed: true,
            fullCause: undefined,
          }),
        ]),
      ],
      format: 'json',
    });
    assert.deepEqual(r.overall.singleUseViolations, { total: 2, adaptive: 1, unattributed: 1 });
    assert.equal(r.destinations[0].verdict.reusedTickets, 'refused');
  });

  test('reused tickets: one refusal among many acceptances is no anti-replay; an expired re-offer is no refusal', async () => {
    const reoffer = (i: number, over: Partial<HandshakeEvent>): string =>
      hs({
        time: minute(i),
        offered: 'tls13-ticket',
        offeredHash: 'aaaaaaaaaaaa',
        reoffered: i > 0,
        resumed: true,
        fullCause: undefined,
        ...over,
      });
    const mostlyAccepted = [0, 1, 2, 3, 4].map((i) => reoffer(i, {}));
    mostlyAccepted.push(reoffer(5, { resumed: false, fullCause: 'refused' })); // a key rotation, say
    const e = { destination: 'mx.e.test:25', offeredHash: 'eeeeeeeeeeee' };
    const onlyExpired = [reoffer(0, e), reoffer(1, { ...e, resumed: false, fullCause: 'expired' })];
    const r = await auditReport({ files: [file([...mostlyAccepted, ...onlyExpired])], format: 'json' });
    const verdict = (d: string): string => r.destinations.find((x) => x.destination === d)!.verdict.reusedTickets;
    assert.equal(verdict('mx.a.test:25'), 'accepted');
    assert.equal(verdict('mx.e.test:25'), 'untested');
  });

  test('HTML series are kept for a bounded set of destinations, the busiest among them', () => {
    const agg = new Aggregator({ series: true });
    // One busy destination among 500 one-off ones (a relay talking to many MX hosts).
    for (let i = 0; i < 500; i++) {
      agg.addLine(hs({ time: minute(i % 60), destination: `mx${i}.test:25` }));
      agg.addLine(hs({ time: minute(i % 60), destination: 'busy.test:25' }));
    }
    assert.equal(agg.destinations.size, 501, 'every destination is still counted');
    assert.ok(agg.series.size <= 64, `series kept: ${agg.series.size}`);
    assert.ok(agg.series.has('busy.test:25'), 'the busiest keeps its series');
  });

  test('repeats further apart than --ticket-window are not matched', async () => {
    const f = file([
      hs({ time: minute(0), offered: 'tls13-ticket', offeredHash: '0000000000aa', resumed: true, fullCause: undefined }),
      hs({ time: minute(30), offered: 'tls13-ticket', offeredHash: '0000000000bb', resumed: true, fullCause: undefined }),
      hs({ time: minute(59), offered: 'tls13-ticket', offeredHash: '0000000000aa', resumed: true, fullCause: undefined }),
    ]);
    assert.equal((await auditReport({ files: [f], format: 'json' })).overall.singleUseViolations.total, 1);
    assert.equal((await auditReport({ files: [f], format: 'json', ticketWindowSeconds: 600 })).overall.singleUseViolations.total, 0);
  });

  test('past --max-destinations, further destinations are pooled, without a verdict', async () => {
    const r = await auditReport({ files: [file(sample)], format: 'json', maxDestinations: 2 });
    assert.deepEqual(r.destinations.map((d) => d.destination).sort(), ['(other destinations)', 'mx.a.test:25', 'mx.b.test:25']);
    assert.equal(r.input.pooledHandshakes, 1, 'mx.c.test came third');
    assert.equal(r.overall.connections, 6, 'nothing lost');
    const pooled = r.destinations.find((d) => d.destination === '(other destinations)')!;
    assert.equal(pooled.verdict.ceiling, null);
  });

  test('--since, --until and --dest', async () => {
    const f = file(sample);
    const r = await auditReport({ files: [f], format: 'json', since: minute(1), until: minute(4) });
    assert.equal(r.overall.connections, 3, 'minutes 1, 2, 3 (until is exclusive)');
    assert.equal(r.input.filteredOut, 6);
    const b = await auditReport({ files: [f], format: 'json', dest: 'b.test' });
    assert.deepEqual(
      b.destinations.map((d) => d.destination),
      ['mx.b.test:25'],
    );
    const exact = await auditReport({ files: [f], format: 'json', dest: 'mx.a.test:25' });
    assert.equal(exact.overall.connections, 2);
    assert.equal(exact.overall.smtp.transactions, 2, 'SMTP transactions filter by next hop');
    await assert.rejects(auditReport({ files: [f], format: 'json', since: 'yesterday' }), /--since: "yesterday" is not an ISO 8601 time/);
  });

  test('gzip and rotated files in the order given; a cut-off .gz is reported, not fatal', async () => {
    const older = file(sample.slice(0, 3), true, 'audit.log.2.gz');
    const rotated = file(sample.slice(3, 5), false, 'audit.log.1');
    const current = file(sample.slice(5), false, 'audit.log');
    const whole = gzipSync(sample.join('\n') + '\n');
    const cut = join(dir, 'cut.gz');
    writeFileSync(cut, whole.subarray(0, whole.length - 12));
    const r = await auditReport({ files: [older, rotated, current, cut, join(dir, 'missing.log')], format: 'json' });
    assert.equal(r.overall.connections, 6 + 6, 'all of the three files, and every whole line of the cut-off one');
    assert.equal(r.input.problems.length, 2);
    assert.match(r.input.problems[0].error, /unexpected end of file/);
    assert.match(r.input.problems[1].error, /ENOENT/);
  });

  test('CRLF line ends, a last line without its newline, and a line longer than a read chunk', async () => {
    const path = join(dir, 'crlf.jsonl');
    const long = hs({ time: minute(2), servername: 'x'.repeat(200_000) });
    writeFileSync(path, `${sample[0]}\r\n${long}\r\n${sample[1]}`);
    const r = await auditReport({ files: [path], format: 'json' });
    assert.equal(r.input.lines, 3);
    assert.equal(r.input.malformed + r.input.truncated, 0);
    assert.equal(r.overall.connections, 3);
  });

  test('stdin when no file is named, through the CLI', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'audit', '--format', 'json'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stdin.end(sample.join('\n') + '\n');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    const r = JSON.parse(out) as AuditReport;
    assert.deepEqual(r.sources, ['-']);
    assert.equal(r.overall.connections, 6);
  });

  test('the CLI refuses a bad --format with exit code 2', async () => {
    await assert.rejects(
      exec(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'audit', '--format', 'pdf']),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /--format: expected text, json or html/);
        return true;
      },
    );
  });
});

describe('bounded structures', () => {
  test('histogram percentiles are within 4.5% of the exact ones', () => {
    const h = new LogHistogram();
    const values: number[] = [];
    for (let i = 1; i <= 10_000; i++) {
      const v = 0.5 + ((i * 7919) % 10_000) / 1000; // 0.5 .. 10.5 ms, spread
      values.push(v);
      h.add(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1];
      const got = h.quantile(q)!;
      assert.ok(Math.abs(got - exact) / exact < 0.045, `q${q}: ${got} vs ${exact}`);
    }
  });

  test('offered-ticket set: exact, forgets past the window, turns over early past its cap', () => {
    const s = new OfferedTickets(60_000, 1000);
    assert.equal(s.offer('00000000000a', 0), false);
    assert.equal(s.offer('00000000000a', 1000), true);
    for (let i = 1; i < 900; i++) assert.equal(s.offer(i.toString(16).padStart(12, '0') + '', 2000), i === 10, `hash ${i}`);
    assert.equal(s.offer('00000000000a', 59_000), true, 'within the window');
    assert.equal(s.offer('ffffffffffff', 130_000), false);
    assert.equal(s.offer('00000000000a', 130_001), false, 'two windows later it is forgotten');
    assert.equal(s.shortestHorizonMs, undefined);
    for (let i = 0; i < 2500; i++) s.offer((0x100000 + i).toString(16).padStart(12, '0'), 130_002);
    assert.ok(s.shortestHorizonMs !== undefined, 'the cap forced an early turnover, and the report says so');
    assert.ok(s.size <= 2000);
  });

  test('time buckets stay within the bound over any span', () => {
    const axis = new TimeAxis(50);
    const series = new Series(axis);
    const start = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 10_000; i++)
      series.add({ timeMs: start + i * 37_000, resumed: i % 3 !== 0, failed: false, handshakeMs: 1, ticketsLeft: i % 5 });
    const values = series.values();
    assert.ok(values.length <= 50, `${values.length} buckets`);
    assert.equal(
      values.reduce((n, b) => n + (b?.connections ?? 0), 0),
      10_000,
      'no handshake lost in merging',
    );
    assert.equal(values.at(-1)!.ticketsLeft, 9_999 % 5, 'stock is the latest value in the bucket');
  });

  test('time buckets fit the span: one round width from 1 s to 1 d, 30 to 150 of them (a ten-second log: ten points)', () => {
    const start = Date.UTC(2026, 0, 1, 10);
    const spans: Array<[spanS: number, widthS: number]> = [
      [9, 1],
      [60, 1],
      [300, 5],
      [3600, 30],
      [6 * 3600, 300],
      [86_400, 600],
      [7 * 86_400, 3 * 3600],
      [30 * 86_400, 6 * 3600],
    ];
    for (const [spanS, widthS] of spans) {
      const axis = new TimeAxis();
      const series = new Series(axis);
      const n = 1000;
      for (let i = 0; i <= n; i++)
        series.add({ timeMs: start + Math.round((i * spanS * 1000) / n), resumed: false, failed: false, handshakeMs: 1, ticketsLeft: 0 });
      const values = series.values();
      assert.equal(axis.widthMs / 1000, widthS, `a span of ${spanS} s: buckets of ${axis.widthMs / 1000} s`);
      assert.ok((BUCKET_WIDTHS_S as readonly number[]).includes(widthS));
      assert.ok(values.length <= 150 && values.length >= Math.min(30, spanS + 1), `a span of ${spanS} s: ${values.length} buckets`);
      assert.equal(
        values.reduce((sum, b) => sum + (b?.connections ?? 0), 0),
        n + 1,
        'no handshake lost in merging',
      );
    }
    assert.deepEqual([5, 600, 3 * 3600, 86_400].map(widthText), ['5 s', '10 min', '3 h', '1 d']);
  });

  test('the headline counts messages relayed and the share on a cached connection beside the handshakes, in text and HTML', async () => {
    const reused = { reused: { ageMs: 800, use: 2 } };
    const lines = [
      hs({ time: minute(0) }),
      transactionLine('mx.a.test:25', 250, {}),
      ...[1, 2, 3].map(() => transactionLine('mx.a.test:25', 250, reused)),
      transactionLine('mx.b.test:25', 550, {}),
    ];
    const r = await auditReport({ files: [file(lines)], format: 'html' });
    assert.match(
      formatText(r),
      /^ticketbooth audit: 1 TLS handshake to 1 destination, 5 messages relayed \(60\.0% on a cached connection\) from /,
    );
    assert.match(formatHtml(r), /1 TLS handshakes to 1 destinations, 0\.0% resumed, 5 messages relayed \(60\.0% on a cached connection\)/);
    // A log of tunnels only has no messages, and says nothing about them.
    const tunnels = await auditReport({ files: [file([hs({ time: minute(0) })])], format: 'text' });
    assert.match(formatText(tunnels), /^ticketbooth audit: 1 TLS handshake to 1 destination from /);
  });
});
