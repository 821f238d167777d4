import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { smtpTransactionEventSchema, type SmtpTransactionEvent } from '../../../src/audit/events.js';
import { Aggregator } from '../../../src/audit/report/aggregate.js';
import { formatJson } from '../../../src/audit/report/format-json.js';
import { formatText } from '../../../src/audit/report/format-text.js';
import { buildReport, type AuditReport } from '../../../src/audit/report/report.js';
import type { Route } from '../../../src/smtp/routing.js';
import { routeForEnvelope } from '../../../src/smtp/tls-required-no.js';
import { transactionEvent, type Transaction } from '../../../src/smtp/transaction.js';

/**
 * `ticketbooth audit` on DSN, REQUIRETLS and TLS-Required: No: lines made by the code that writes
 * them (transactionEvent, and the audit log's `time`), read back through the report.
 */

const ROUTE: Route = {
  name: 'route',
  mode: 'mx',
  port: 25,
  tls: { level: 'dane', mtaSts: true, secureMatch: 'dot-nexthop', daneInsecureMx: 'dane' },
};

function line(domain: string, over: Partial<Transaction>, route = ROUTE): string {
  const tx: Transaction = {
    started: performance.now(),
    from: { address: 'a@client.test', domain: 'client.test', utf8: false, params: new Map(), words: new Map() },
    smtputf8: false,
    recipients: ['u@' + domain],
    rcptDsn: [],
    lastCode: 250,
    messageSize: 100,
    hop: { key: `route|mx|${domain}`, route, domain, pool: 'p' },
    ...over,
  };
  const event = transactionEvent(tx, { listener: 'sh', client: '127.0.0.1:1000', logAddresses: 'none' }, false);
  // What AuditLog.record writes; the schema is the file format's.
  return JSON.stringify({ time: '2026-11-01T10:00:00.000Z', ...smtpTransactionEventSchema.parse(event) });
}

const bypass = routeForEnvelope(ROUTE, { tlsRequiredNo: true });
const LINES = [
  line('a.test', { dsnCount: { passedOn: 2, local: 0 }, requireTls: true, requireTlsResult: 'passed-on' }),
  line('a.test', { dsnCount: { passedOn: 1, local: 0 } }),
  line('b.test', { dsnCount: { passedOn: 0, local: 2 } }),
  line('c.test', { requireTls: true, requireTlsResult: 'not-announced', lastCode: 550 }),
  line('c.test', { requireTls: true, requireTlsResult: 'not-found-securely', lastCode: 550 }),
  line('d.test', {}, bypass),
  line('d.test', {}, bypass),
  line('e.test', {}), // asked nothing: not in the section
  // A later version's outcome is counted as written; a malformed dsn is dropped, the line still read.
  JSON.stringify({
    event: 'smtp.transaction',
    listener: 'sh',
    client: 'x',
    nextHop: 'c.test:25',
    recipients: 1,
    size: 1,
    code: 550,
    ms: 1,
    requireTls: 'not-yet-known',
    dsn: 'bad',
  }),
];

function report(lines: string[], maxDestinations?: number): AuditReport {
  const agg = new Aggregator(maxDestinations === undefined ? {} : { maxDestinations });
  for (const l of lines) agg.addLine(l);
  return buildReport(agg, { sources: ['test'], filters: {}, problems: [] });
}

describe('audit report: DSN, REQUIRETLS and TLS-Required: No per next hop', () => {
  test('the lines as written: TLS-Required: No names what it set aside', () => {
    assert.deepEqual((JSON.parse(LINES[5]) as SmtpTransactionEvent).policyBypass, { why: 'tls-required-no', ignored: ['mta-sts', 'dane'] });
    assert.equal((JSON.parse(LINES[7]) as SmtpTransactionEvent).policyBypass, undefined);
  });

  test('JSON: totals and each next hop, busiest first', () => {
    const r = JSON.parse(formatJson(report(LINES))) as AuditReport;
    assert.equal(r.input.smtpTransactions, 9);
    assert.deepEqual(r.smtpRequests, {
      transactions: 8,
      dsn: { passedOn: 3, local: 2 },
      requireTls: { 'passed-on': 1, 'not-announced': 1, 'not-found-securely': 1, 'not-yet-known': 1 },
      policyBypass: { 'mta-sts+dane': 2 },
      byNextHop: [
        {
          nextHop: 'c.test:25',
          transactions: 3,
          dsn: { passedOn: 0, local: 0 },
          requireTls: { 'not-announced': 1, 'not-found-securely': 1, 'not-yet-known': 1 },
          policyBypass: {},
        },
        { nextHop: 'a.test:25', transactions: 2, dsn: { passedOn: 3, local: 0 }, requireTls: { 'passed-on': 1 }, policyBypass: {} },
        { nextHop: 'd.test:25', transactions: 2, dsn: { passedOn: 0, local: 0 }, requireTls: {}, policyBypass: { 'mta-sts+dane': 2 } },
        { nextHop: 'b.test:25', transactions: 1, dsn: { passedOn: 0, local: 2 }, requireTls: {}, policyBypass: {} },
      ],
    });
  });

  test('text: one line overall, one per next hop', () => {
    const text = formatText(report(LINES));
    const at = text.split('\n').indexOf('DSN, REQUIRETLS and TLS-Required: No (SMTP transactions that asked them)');
    assert.ok(at > 0, text);
    assert.deepEqual(text.split('\n').slice(at + 1, at + 6), [
      '  overall: DSN requests 3 passed on, 2 answered by ticketbooth; REQUIRETLS passed-on 1, not-announced 1, not-found-securely 1, not-yet-known 1; TLS-Required: No, set aside: mta-sts+dane 2',
      '  to c.test:25: REQUIRETLS not-announced 1, not-found-securely 1, not-yet-known 1',
      '  to a.test:25: DSN requests 3 passed on, 0 answered by ticketbooth; REQUIRETLS passed-on 1',
      '  to d.test:25: TLS-Required: No, set aside: mta-sts+dane 2',
      '  to b.test:25: DSN requests 0 passed on, 2 answered by ticketbooth',
    ]);
  });

  test('no line asked anything: no section', () => {
    const r = report([line('e.test', {})]);
    assert.equal(r.smtpRequests, undefined);
    assert.doesNotMatch(formatText(r), /REQUIRETLS/);
  });

  test('bounded: past --max-destinations, next hops are pooled', () => {
    const r = report(LINES, 2);
    assert.deepEqual(
      r.smtpRequests!.byNextHop.map((h) => [h.nextHop, h.transactions]),
      [
        ['(other destinations)', 5],
        ['a.test:25', 2],
        ['b.test:25', 1],
      ],
    );
  });
});
