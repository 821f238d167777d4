import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseEnvelopeArg } from '../../../src/smtp/envelope.js';
import type { Route } from '../../../src/smtp/routing.js';
import type { TlsPolicy } from '../../../src/smtp/tls-policy.js';
import { policyBypassOf, routeForEnvelope } from '../../../src/smtp/tls-required-no.js';
import { envelopeOf } from '../../../src/smtp/transaction.js';

/** TLS-Required: No on MAIL: what the parameter is taken as, and the route a transaction then takes. */

const route = (tls: Partial<TlsPolicy>): Route => ({
  name: 'route',
  mode: 'mx',
  port: 25,
  tls: { level: 'dane', mtaSts: true, secureMatch: 'dot-nexthop', daneInsecureMx: 'dane', ...tls },
});

function mail(arg: string): ReturnType<typeof envelopeOf> {
  const p = parseEnvelopeArg(arg, 'FROM');
  assert.ok(p.ok);
  return envelopeOf(p.arg, 1_000_000);
}

describe('TLS-Required: No on MAIL (X-TLS-REQUIRED=NO)', () => {
  test('the parameter: NO in any case is taken; any other value, or none, is an unsupported parameter', () => {
    for (const arg of ['FROM:<a@b.test> X-TLS-REQUIRED=NO', 'FROM:<a@b.test> x-tls-required=no'])
      assert.equal((mail(arg) as { tlsRequiredNo?: true }).tlsRequiredNo, true, arg);
    for (const arg of ['FROM:<a@b.test> X-TLS-REQUIRED=YES', 'FROM:<a@b.test> X-TLS-REQUIRED']) {
      const r = mail(arg);
      assert.ok('refusal' in r, arg);
      assert.equal(r.refusal.code, 555);
    }
  });

  test('dane with MTA-STS: both set aside, dane as may; the same derived route every time', () => {
    const r = route({});
    const b = routeForEnvelope(r, { tlsRequiredNo: true });
    assert.deepEqual([b.tls.level, b.tls.mtaSts], ['may', false]);
    assert.equal(routeForEnvelope(r, { tlsRequiredNo: true }), b, 'one cache slot for its connections');
    assert.deepEqual(policyBypassOf(b), { why: 'tls-required-no', ignored: ['mta-sts', 'dane'] });
    assert.equal(policyBypassOf(r), undefined);
  });

  test("the operator's own levels stay; only MTA-STS is set aside", () => {
    for (const level of ['verify', 'secure', 'encrypt', 'dane-only'] as const) {
      const b = routeForEnvelope(route({ level }), { tlsRequiredNo: true });
      assert.deepEqual([b.tls.level, b.tls.mtaSts, policyBypassOf(b)?.ignored], [level, false, ['mta-sts']], level);
    }
    const none = routeForEnvelope(route({ level: 'encrypt', mtaSts: false }), { tlsRequiredNo: true });
    assert.deepEqual(policyBypassOf(none), { why: 'tls-required-no', ignored: [] });
  });

  test('without it, or with REQUIRETLS on the same MAIL, the configured route', () => {
    const r = route({});
    assert.equal(routeForEnvelope(r, {}), r);
    assert.equal(routeForEnvelope(r, { tlsRequiredNo: true, requireTls: true }), r);
  });
});
