import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Ajv } from 'ajv';
import type { AuditEvent } from '../../../src/audit/events.js';
import { collectDay } from '../../../src/tlsrpt/collect.js';
import { reportMessage } from '../../../src/tlsrpt/mail-message.js';
import { buildReport, reportDay, reportFilename, reportId, type TlsrptReport } from '../../../src/tlsrpt/report.js';
import { parseTlsrptTxt } from '../../../src/tlsrpt/rua.js';
import { SentState } from '../../../src/tlsrpt/sent-state.js';
import { handshakeLine } from '../../support/audit-lines.js';

const schema = JSON.parse(readFileSync(new URL('../../fixtures/tlsrpt-schema.json', import.meta.url), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile<TlsrptReport>(schema);

const DAY = reportDay('2026-11-27');
const WHO = { org: 'Example Sender', contact: 'postmaster@sender.example', domain: 'sender.example' };
const ENF_TEXT = 'version: STSv1\r\nmode: enforce\r\nmx: mx1.enf.example\r\nmax_age: 86400';
const TST_TEXT = 'version: STSv1\r\nmode: testing\r\nmx: *.tst.example\r\nmax_age: 604800';
const TLSA = ['3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6'];

const at = (hhmm: string, day = '2026-11-27'): string => `${day}T${hhmm}:00.000Z`;
const line = (e: Partial<AuditEvent> & { event: AuditEvent['event'] }): string => JSON.stringify(e);
const enf = { domain: 'enf.example', mode: 'enforce' as const, id: '1', mxHost: 'mx1.enf.example', mx: 'match' as const };
const tst = { domain: 'tst.example', mode: 'testing' as const, id: '20261101', mxHost: 'a.tst.example', mx: 'match' as const };
const noPolicy = { domain: 'plain.example', mxHost: 'mx.plain.example' };
const dane = (over: Record<string, unknown>): Record<string, unknown> => ({
  level: 'dane',
  applied: 'dane',
  mxDnssec: 'secure',
  tlsa: 'usable',
  records: 1,
  domain: 'dane.example',
  mxHost: 'mx.dane.example',
  tlsaRecords: TLSA,
  ...over,
});
const tx = (over: Record<string, unknown>): string =>
  JSON.stringify({
    event: 'smtp.transaction',
    time: at('12:00'),
    listener: 'sh',
    client: '127.0.0.1',
    recipients: 1,
    size: 10,
    code: 250,
    ms: 5,
    ...over,
  });
const hs = (over: Record<string, unknown>): string =>
  handshakeLine({ time: at('10:00'), destination: '198.51.100.1:25', sendingIp: '192.0.2.1', ehloName: 'mx1', ...over });
const upErr = (over: Record<string, unknown>): string =>
  JSON.stringify({
    event: 'upstream.error',
    time: at('11:00'),
    listener: 'sh',
    destination: '198.51.100.1:25',
    ms: 3,
    error: 'x',
    ...over,
  });

/** A day of a smarthost's audit lines, each case once, by hand. */
const LINES = [
  // Policy texts: fetched the day before (quoted from there), and on the day.
  line({
    event: 'mta-sts.policy',
    time: at('23:00', '2026-11-26'),
    listener: 'sh',
    domain: 'enf.example',
    id: '1',
    mode: 'enforce',
    mx: ['mx1.enf.example'],
    maxAge: 86400,
    text: ENF_TEXT,
  }),
  line({
    event: 'mta-sts.policy',
    time: at('08:00'),
    listener: 'sh',
    domain: 'tst.example',
    id: '20261101',
    mode: 'testing',
    mx: ['*.tst.example'],
    maxAge: 604800,
    text: TST_TEXT,
  }),
  // enf.example (enforce): 3 verified sessions, a certificate that did not verify, no STARTTLS, every MX outside the policy.
  hs({ sts: { ...enf, result: 'success' } }),
  hs({ sts: { ...enf, result: 'success' }, resumed: true }),
  hs({ sts: { ...enf, result: 'success' } }),
  hs({ sts: { ...enf, result: 'certificate-not-trusted' }, error: 'self-signed', errorCode: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
  upErr({
    stage: 'starttls',
    errorCode: 'ERR_NO_STARTTLS',
    sendingIp: '192.0.2.1',
    ehloName: 'mx1',
    sts: { ...enf, result: 'starttls-not-supported' },
  }),
  upErr({ stage: 'connect', errorCode: 'ECONNREFUSED', sts: { ...enf, result: 'validation-failure' } }), // no TLS attempted: no session
  tx({ sts: { ...enf, result: 'success' }, nextHop: 'mx1.enf.example[198.51.100.1]:25' }), // its handshake is the session
  tx({ sts: { ...enf, result: 'success' }, reused: { ageMs: 10, use: 2 } }),
  tx({
    code: 451,
    sts: { domain: 'enf.example', mode: 'enforce', id: '1', mx: 'mismatch', result: 'validation-failure' },
    nextHop: 'enf.example:25',
  }),
  hs({ time: at('00:00', '2026-11-28'), sts: { ...enf, result: 'success' } }), // the next day
  // tst.example (testing): delivered, but verify would have failed; one MX without STARTTLS, and its reuse.
  hs({ destination: '198.51.100.7:25', ehloName: 'a', sts: { ...tst, result: 'certificate-host-mismatch' } }),
  hs({ destination: '198.51.100.7:25', ehloName: 'a', sts: { ...tst, result: 'certificate-host-mismatch' } }),
  tx({ sts: { ...tst, result: 'starttls-not-supported' }, cleartext: 'not-offered', nextHop: 'a.tst.example[198.51.100.7]:25' }),
  tx({ sts: { ...tst, result: 'starttls-not-supported' }, cleartext: 'not-offered', reused: { ageMs: 10, use: 2 } }),
  // plain.example (no policy): TLS twice, cleartext once, a policy host that failed (no cached policy), and a fallback.
  hs({ destination: '203.0.113.9:25', sts: { ...noPolicy, result: 'success' } }),
  hs({ destination: '203.0.113.9:25', sts: { ...noPolicy, result: 'success' } }),
  tx({ sts: { ...noPolicy, result: 'starttls-not-supported' }, cleartext: 'not-offered', nextHop: 'mx.plain.example[203.0.113.9]:25' }),
  tx({ sts: { ...noPolicy, result: 'starttls-not-supported' }, cleartext: 'fallback' }), // its failed handshake is the session
  tx({ sts: { domain: 'plain.example', fetchFailure: 'sts-policy-fetch-error', mxHost: 'mx.plain.example', result: 'success' } }),
  // dane.example: two TLSA-verified sessions, a mismatch, and a host deferred by a bogus TLSA answer.
  hs({ destination: '198.51.100.20:25', servername: 'mx.dane.example', dane: dane({ auth: 'Verified', result: 'success' }) }),
  hs({ destination: '198.51.100.20:25', servername: 'mx.dane.example', dane: dane({ auth: 'Verified', result: 'success' }) }),
  hs({
    destination: '198.51.100.20:25',
    error: 'x',
    errorCode: 'ERR_TLSA_MISMATCH',
    dane: dane({ auth: 'Untrusted', reason: 'tlsa-mismatch', result: 'tlsa-invalid' }),
  }),
  tx({
    code: 451,
    dane: dane({ applied: 'defer', tlsa: 'failed', reason: 'dnssec-bogus', tlsaRecords: undefined, result: 'dnssec-invalid' }),
  }),
  // Neither lines of ours nor whole ones.
  handshakeLine({ time: at('10:00') }),
  '{"event":"tls.handshake","time":"2026-11-27T10:00:00Z","sts":{"domain":',
  'not json',
  '',
];

describe('tlsrpt: the report of a day of audit lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-tlsrpt-unit-'));
  // The day in two files, as logrotate leaves them: the older one compressed.
  writeFileSync(join(dir, 'audit.log.1.gz'), gzipSync(LINES.slice(0, 12).join('\n') + '\n'));
  writeFileSync(join(dir, 'audit.log'), LINES.slice(12).join('\n') + '\n');
  const collected = collectDay([join(dir, 'audit.log.1.gz'), join(dir, 'audit.log')], DAY);
  const reports = collected.then((c) => new Map([...c.sessions].map(([d, s]) => [d, buildReport(WHO, d, DAY, s, c.stsPolicies)])));

  test('one report per recipient domain, each valid against the RFC 8460 schema, counts adding up', async () => {
    const all = await reports;
    assert.deepEqual([...all.keys()].sort(), ['dane.example', 'enf.example', 'plain.example', 'tst.example']);
    for (const [domain, r] of all) {
      assert.ok(validate(r), `${domain}: ${JSON.stringify(validate.errors, null, 1)}`);
      for (const p of r.policies) {
        const details = (p['failure-details'] ?? []).reduce((n, d) => n + d['failed-session-count'], 0);
        assert.equal(details, p.summary['total-failure-session-count'], `${domain}: failure-details add up to the failure count`);
      }
    }
  });

  test('enforce: the report field by field (handshakes, STARTTLS refused, no matching MX; not connects, reuse or the next day)', async () => {
    const r = (await reports).get('enf.example')!;
    assert.deepEqual(r, {
      'organization-name': 'Example Sender',
      'date-range': { 'start-datetime': '2026-11-27T00:00:00Z', 'end-datetime': '2026-11-27T23:59:59Z' },
      'contact-info': 'postmaster@sender.example',
      'report-id': reportId(WHO, 'enf.example', DAY),
      policies: [
        {
          policy: {
            'policy-type': 'sts',
            'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx1.enf.example', 'max_age: 86400'],
            'policy-domain': 'enf.example',
            'mx-host': ['mx1.enf.example'],
          },
          summary: { 'total-successful-session-count': 3, 'total-failure-session-count': 3 },
          'failure-details': [
            {
              'result-type': 'certificate-not-trusted',
              'sending-mta-ip': '192.0.2.1',
              'receiving-mx-hostname': 'mx1.enf.example',
              'receiving-mx-helo': 'mx1',
              'receiving-ip': '198.51.100.1',
              'failed-session-count': 1,
              'failure-reason-code': 'DEPTH_ZERO_SELF_SIGNED_CERT',
            },
            {
              'result-type': 'starttls-not-supported',
              'sending-mta-ip': '192.0.2.1',
              'receiving-mx-hostname': 'mx1.enf.example',
              'receiving-mx-helo': 'mx1',
              'receiving-ip': '198.51.100.1',
              'failed-session-count': 1,
              'failure-reason-code': 'ERR_NO_STARTTLS',
            },
            { 'result-type': 'validation-failure', 'failed-session-count': 1, 'failure-reason-code': 'mx-mismatch' },
          ],
        },
      ],
    });
  });

  test('testing: what enforce would have met; no-policy-found: TLS, cleartext and a failed policy fetch', async () => {
    const all = await reports;
    const t = all.get('tst.example')!.policies;
    assert.equal(t.length, 1);
    assert.deepEqual(t[0].policy['policy-string'], TST_TEXT.split('\r\n'));
    assert.deepEqual(t[0].summary, { 'total-successful-session-count': 0, 'total-failure-session-count': 3 });
    assert.deepEqual(
      t[0]['failure-details']!.map((d) => [d['result-type'], d['failed-session-count'], d['receiving-ip']]),
      [
        ['certificate-host-mismatch', 2, '198.51.100.7'],
        ['starttls-not-supported', 1, '198.51.100.7'],
      ],
    );
    const p = all.get('plain.example')!.policies;
    assert.deepEqual(
      p.map((x) => x.policy),
      [{ 'policy-type': 'no-policy-found', 'policy-domain': 'plain.example' }],
    );
    assert.deepEqual(p[0].summary, { 'total-successful-session-count': 2, 'total-failure-session-count': 2 });
    assert.deepEqual(p[0]['failure-details']!.map((d) => d['result-type']).sort(), ['starttls-not-supported', 'sts-policy-fetch-error']);
  });

  test('DANE: TLSA sessions under their records; a host DNSSEC deferred without records under no-policy-found', async () => {
    const d = (await reports).get('dane.example')!.policies;
    assert.deepEqual(
      d.map((x) => [x.policy, x.summary]),
      [
        [
          { 'policy-type': 'tlsa', 'policy-string': TLSA, 'policy-domain': 'dane.example', 'mx-host': ['mx.dane.example'] },
          { 'total-successful-session-count': 2, 'total-failure-session-count': 1 },
        ],
        [
          { 'policy-type': 'no-policy-found', 'policy-domain': 'dane.example' },
          { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
        ],
      ],
    );
    assert.deepEqual(d[0]['failure-details']![0]['result-type'], 'tlsa-invalid');
    assert.deepEqual(d[1]['failure-details'], [
      {
        'result-type': 'dnssec-invalid',
        'receiving-mx-hostname': 'mx.dane.example',
        'failed-session-count': 1,
        'failure-reason-code': 'dnssec-bogus',
      },
    ]);
  });

  test('names and ids: RFC 8460 5.3 file name, a report-id per organization, domain and day', () => {
    assert.equal(reportFilename(WHO, 'enf.example', DAY), 'sender.example!enf.example!1795737600!1795823999.json.gz');
    assert.match(reportId(WHO, 'enf.example', DAY), /^20261127\.enf\.example\.[0-9a-f]{10}@sender\.example$/);
    assert.equal(reportId(WHO, 'enf.example', DAY), reportId({ ...WHO }, 'enf.example', reportDay('2026-11-27')));
    assert.notEqual(reportId(WHO, 'enf.example', DAY), reportId({ ...WHO, org: 'Other' }, 'enf.example', DAY));
    assert.notEqual(reportId(WHO, 'enf.example', DAY), reportId(WHO, 'enf.example', reportDay('2026-11-28')));
    assert.throws(() => reportDay('2026-02-30'), /not a day/);
  });
});

describe('tlsrpt: the _smtp._tls record, the mail, the record of deliveries', () => {
  test('exactly one v=TLSRPTv1 record; mailto: and https: delivered to, other schemes ignored', () => {
    const r = parseTlsrptTxt(['v=spf1 -all', 'v=TLSRPTv1; rua=mailto:tls%2Drpt@example.org, https://rpt.example.org/v1 ,ftp://x']);
    assert.ok('ruas' in r);
    assert.deepEqual(
      r.ruas.map((u) => [u.kind, u.kind === 'mailto' ? u.address : u.url.href]),
      [
        ['mailto', 'tls-rpt@example.org'],
        ['https', 'https://rpt.example.org/v1'],
      ],
    );
    assert.deepEqual(r.ignored, ['ftp://x']);
    assert.ok('none' in parseTlsrptTxt([]));
    assert.ok('none' in parseTlsrptTxt(['v=TLSRPTv1; rua=mailto:a@b.example', 'v=TLSRPTv1; rua=mailto:c@d.example']));
    assert.ok('none' in parseTlsrptTxt(['v=TLSRPTv1;']));
  });

  test('the mail of RFC 8460 5.3: subject, headers, multipart/report, the gzip attachment intact', () => {
    const gzipped = gzipSync('{"report":1}');
    const raw = reportMessage({
      from: 'postmaster@sender.example',
      to: 'tlsrpt@enf.example',
      domain: 'enf.example',
      submitter: 'sender.example',
      org: 'Example Sender',
      reportId: 'r1@sender.example',
      filename: 'sender.example!enf.example!1!2.json.gz',
      gzipped,
    }).toString('ascii');
    assert.ok(raw.split('\r\n').every((l) => l.length <= 78));
    assert.doesNotMatch(raw, /[^\r]\n/);
    const unfolded = raw.replace(/\r\n /g, ' ');
    assert.match(unfolded, /^Subject: Report Domain: enf\.example Submitter: sender\.example Report-ID: <r1@sender\.example>\r$/m);
    assert.match(unfolded, /^TLS-Report-Domain: enf\.example\r$/m);
    assert.match(unfolded, /^TLS-Report-Submitter: sender\.example\r$/m);
    assert.match(unfolded, /^TLS-Required: No\r$/m);
    assert.match(unfolded, /^Content-Type: multipart\/report; report-type="tlsrpt"; boundary="([^"]+)"\r$/m);
    const part =
      /Content-Type: application\/tlsrpt\+gzip\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="sender\.example!enf\.example!1!2\.json\.gz"\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--/.exec(
        unfolded,
      );
    assert.ok(part);
    assert.deepEqual(Buffer.from(part[1].replace(/\r\n/g, ''), 'base64'), gzipped);
  });

  test('the record of deliveries: kept across runs, written whole, old days forgotten', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tb-tlsrpt-state-')), 'sub', '.tlsrpt-sent.json');
    const s = SentState.load(file);
    assert.equal(s.has('20261127.a.example.x@s.example', 'mailto:r@a.example'), false);
    s.record('20260101.a.example.x@s.example', 'mailto:r@a.example', new Date('2026-01-01T01:00:00Z'));
    s.record('20261127.a.example.x@s.example', 'mailto:r@a.example', new Date('2026-11-28T00:10:00Z'));
    const again = SentState.load(file);
    assert.equal(again.has('20261127.a.example.x@s.example', 'mailto:r@a.example'), true);
    assert.equal(again.has('20261127.a.example.x@s.example', 'https://a.example/'), false);
    assert.equal(again.has('20260101.a.example.x@s.example', 'mailto:r@a.example'), false, 'past 90 days: forgotten');
    writeFileSync(file, '[1]');
    assert.throws(() => SentState.load(file), /not a TLS-RPT delivery record/);
  });
});
