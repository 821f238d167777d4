import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DOC_FILE, renderErrorsDoc } from '../../../scripts/error-codes-doc.js';
import { upstreamErrorCause } from '../../../src/audit/error-cause.js';
import { ReportOptionError } from '../../../src/audit/report/run-report.js';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { TRUST_SETTINGS, withCertificateAdvice } from '../../../src/errors/certificate-advice.js';
import { causeOfCode } from '../../../src/errors/classify.js';
import { ERROR_CODES, isUpstreamCode, upstreamFacts } from '../../../src/errors/codes.js';
import {
  SmtpClosedError,
  SmtpSyntaxError,
  SmtpTimeoutError,
  SmtpTooLongError,
  TicketboothError,
  UpstreamError,
  type UpstreamStage,
} from '../../../src/errors/index.js';
import { resultTypeOf } from '../../../src/mta-sts/result-type.js';
import { SessionParseError } from '../../../src/resumption/session-error.js';
import { hopFailureReply } from '../../../src/smtp/upstream-replies.js';
import { AttrError } from '../../../src/tlsmgr/attr0.js';
import { DaneError } from '../../../src/upstream/dane-check.js';

const CODES = Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>;

/** Not upstream failures: they never reach a metric, a notice or the report, so they have no cause. */
const DELIBERATELY_WITHOUT_CAUSE = ['ERR_CONFIG', 'ERR_REPORT_OPTION', 'ERR_TLSMGR_ATTR', 'ERR_SESSION_UNREADABLE'];

describe('the error table (src/errors/codes.ts)', () => {
  test('every upstream code has a cause other than `other`; only the local ones have none, deliberately', () => {
    const without = CODES.filter((c) => causeOfCode(c) === 'other');
    assert.deepEqual(without.sort(), [...DELIBERATELY_WITHOUT_CAUSE].sort());
    // The codes once counted as `other` in the metrics, the notices and the report.
    for (const code of [
      'ERR_TLSA_MISMATCH',
      'ERR_DANE_DEFERRED',
      'ERR_SMTP_OUT_OF_STEP',
      'ERR_AUTH_NEEDS_TLS',
      'ERR_AUTH_NO_MECHANISM',
      'ERR_AUTH_FAILED',
    ])
      assert.notEqual(upstreamErrorCause({ errorCode: code, error: 'x' }), 'other', code);
  });

  test('the derived lookups agree with the table for every code: cause, TLS-RPT result, SMTP reply', () => {
    const stages: UpstreamStage[] = ['connect', 'greeting', 'ehlo', 'starttls', 'tls', 'auth', 'transaction'];
    for (const code of CODES.filter(isUpstreamCode)) {
      const row = upstreamFacts(code);
      assert.equal(causeOfCode(code), row.cause, code);
      assert.equal(upstreamErrorCause({ errorCode: code }), row.cause, code);
      assert.equal(resultTypeOf(code), row.resultType, code);
      for (const stage of stages) {
        const err = new UpstreamError('m', stage, code, { replyCode: 554 });
        const got = hopFailureReply(err, 'mx.test:25', { ehloRequired: true, secure: false });
        const want = row.reply({ label: 'mx.test:25', stage, detail: 'm', replyCode: 554, ehloRequired: true, secure: false });
        assert.deepEqual(got, { code: 451, ...want }, `${code} at ${stage}`);
      }
    }
  });

  test('the replies a client hears are the ones it heard before the table', () => {
    const r = (code: UpstreamError['code'], stage: UpstreamStage, ctx = { ehloRequired: false, secure: false }): string => {
      const x = hopFailureReply(new UpstreamError('why', stage, code, { replyCode: 535 }), 'h:25', ctx);
      return `${x.code} ${x.enhanced} ${x.text}`;
    };
    assert.equal(r('ERR_UPSTREAM_CONNECT', 'connect'), '451 4.4.1 cannot connect to h:25');
    assert.equal(r('ERR_UPSTREAM_TIMEOUT', 'connect'), '451 4.4.1 cannot connect to h:25');
    assert.equal(r('ERR_UPSTREAM_TIMEOUT', 'tls'), '451 4.7.5 TLS with h:25 failed: why');
    assert.equal(r('ERR_TLSA_MISMATCH', 'tls'), '451 4.7.5 TLS with h:25 failed: why');
    assert.equal(r('ERR_SMTP_PROTOCOL', 'ehlo', { ehloRequired: true, secure: false }), '451 4.7.4 h:25 refused EHLO; TLS is required');
    assert.equal(r('ERR_SMTP_PROTOCOL', 'ehlo', { ehloRequired: true, secure: true }), '451 4.4.1 h:25 refused EHLO inside TLS');
    assert.equal(r('ERR_SMTP_PROTOCOL', 'ehlo'), '451 4.4.1 h:25 refused HELO');
    assert.equal(r('ERR_AUTH_FAILED', 'auth'), '451 4.7.0 AUTH to h:25 failed with 535');
    assert.equal(r('ERR_SMTP_TIMEOUT', 'transaction'), '451 4.4.2 h:25 timed out');
    assert.equal(r('ERR_SMTP_OUT_OF_STEP', 'transaction'), '451 4.4.2 lost the connection to h:25');
  });

  test('every error is a TicketboothError whose code has a row naming its class', () => {
    const errors: TicketboothError[] = [
      new UpstreamError('m', 'connect', 'ERR_UPSTREAM_CONNECT'),
      new DaneError('m', 'ERR_TLSA_MISMATCH', undefined),
      new SmtpTimeoutError('m'),
      new SmtpClosedError('m'),
      new SmtpSyntaxError('m'),
      new SmtpTooLongError('m'),
      new ConfigError('m'),
      new ReportOptionError('m'),
      new AttrError('m'),
      new SessionParseError('malformed-der', 'm'),
    ];
    for (const e of errors) {
      assert.ok(e instanceof TicketboothError && e instanceof Error, e.name);
      assert.equal(ERROR_CODES[e.code].class, e.constructor.name, e.code);
    }
    // Every class the table names is one of them.
    const named = new Set(errors.map((e) => e.constructor.name));
    for (const code of CODES) assert.ok(named.has(ERROR_CODES[code].class), `${code}: ${ERROR_CODES[code].class}`);
  });

  test('Node’s codes: one certificate rule for causes and TLS-RPT result types', () => {
    const cases: Array<[string, string, string]> = [
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'certificate', 'certificate-not-trusted'],
      ['SELF_SIGNED_CERT_IN_CHAIN', 'certificate', 'certificate-not-trusted'],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', 'certificate', 'certificate-not-trusted'],
      ['CERT_HAS_EXPIRED', 'certificate', 'certificate-expired'],
      ['ERR_TLS_CERT_ALTNAME_INVALID', 'certificate', 'certificate-host-mismatch'],
      ['INVALID_CA', 'certificate', 'certificate-not-trusted'],
      ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls', 'validation-failure'],
      ['ECONNREFUSED', 'connect', 'validation-failure'],
      ['constructor', 'other', 'validation-failure'],
    ];
    assert.deepEqual(
      cases.map(([code]) => [code, causeOfCode(code), resultTypeOf(code)]),
      cases,
    );
  });

  test('docs/errors.md is what scripts/error-codes-doc.ts renders from the table', () => {
    assert.equal(readFileSync(DOC_FILE, 'utf8'), renderErrorsDoc(), 'run: node --import tsx scripts/error-codes-doc.ts');
  });
});

describe('certificate advice names real config keys', () => {
  /** A minimal valid listener of each type, to set a key into. */
  const BASE = {
    tunnel: () => ({ type: 'tunnel', name: 'l', listen: '127.0.0.1:0', upstream: { host: 'h.test', port: 443 } }),
    smtp: () => ({ type: 'smtp', name: 'l', listen: '127.0.0.1:0', route: { mode: 'relay', host: 'h.test' } }),
    http: () => ({ type: 'http', name: 'l', listen: '127.0.0.1:0', upstreams: { localhost: {} } }),
  };
  const set = (listener: Record<string, unknown>, path: string, value: string): void => {
    const keys = path.replace('<origin>', 'localhost').split('.');
    let at = listener;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys.at(-1)!] = value;
  };

  for (const [type, s] of Object.entries(TRUST_SETTINGS) as Array<[keyof typeof BASE, (typeof TRUST_SETTINGS)[keyof typeof BASE]]>) {
    test(`${type}: ${[...s.ca, s.name].join(', ')} parse (a strict schema refuses unknown keys)`, () => {
      for (const path of [...s.ca, s.name]) {
        const l = BASE[type]();
        set(l, path, 'value.test');
        assert.doesNotThrow(() => parseConfig(JSON.stringify({ listeners: [l] })), path);
        set(l, `${path}x`, 'value.test');
        assert.throws(() => parseConfig(JSON.stringify({ listeners: [l] })), ConfigError, `${path}x`);
      }
    });
  }

  test('Node’s hint is replaced by the setting; other messages stay as they are', () => {
    const node = 'unable to verify the first certificate; if the root CA is installed locally, try running Node.js with --use-system-ca';
    assert.equal(
      withCertificateAdvice(node, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'smtp'),
      "unable to verify the first certificate; set `tls.ca` or `route.tls.ca` to a PEM file holding the CA that issued the server's certificate",
    );
    assert.match(
      withCertificateAdvice(node, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', undefined),
      /set `upstream\.ca` or `tls\.ca` or `upstreams\.<origin>\.ca`/,
    );
    assert.match(
      withCertificateAdvice('Hostname/IP does not match', 'ERR_TLS_CERT_ALTNAME_INVALID', 'tunnel'),
      /set `upstream\.servername`/,
    );
    assert.equal(withCertificateAdvice('connect ECONNREFUSED', 'ECONNREFUSED', 'smtp'), 'connect ECONNREFUSED');
    assert.equal(withCertificateAdvice('DANE mx: tlsa-mismatch', 'ERR_TLSA_MISMATCH', 'smtp'), 'DANE mx: tlsa-mismatch');
    // Under DANE or an enforced MTA-STS policy an unknown CA is what a machine in the middle shows:
    // no setting is advised, least of all trusting its issuer.
    for (const policy of ['dane', 'mta-sts'] as const)
      assert.equal(
        withCertificateAdvice(node, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'smtp', policy),
        'unable to verify the first certificate',
      );
  });
});
