import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { decide, deferralText, type DaneLevel, type TlsaState } from '../../../src/dane/decision.js';
import { matchChain } from '../../../src/dane/match.js';
import { isUsable, tlsaSetDigest, type Tlsa } from '../../../src/dane/tlsa.js';
import { tlsaData } from '../../support/tlsa.js';

/** Certificates kept as fixtures (test/fixtures/dane/make.sh); TLSA data computed here the way `ldns-dane` or `openssl x509 | sha256` would. */
function pems(file: string): X509Certificate[] {
  const text = readFileSync(new URL(`../../fixtures/dane/${file}`, import.meta.url), 'utf8');
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
}
function tlsa(usage: number, selector: number, matchingType: number, cert: X509Certificate): Tlsa {
  return { usage, selector, matchingType, data: tlsaData(cert, selector, matchingType) };
}

describe('DANE: TLSA matching (RFC 7671, 7672)', () => {
  const [leaf, ca] = pems('chain.pem');
  const [other] = pems('other.pem');
  const names = ['mx1.dane.test', 'dane.test'];

  test('DANE-EE matches the leaf by certificate or key, every matching type; no name check', () => {
    for (const [s, m] of [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
    ]) {
      const r = matchChain([leaf, ca], [tlsa(3, s, m, leaf)], ['elsewhere.test']);
      assert.ok(r.ok, `3 ${s} ${m}`);
      assert.equal(r.depth, 0);
    }
  });

  test('DANE-TA: the sent CA signs the leaf, and the leaf names the MX host or the next-hop domain', () => {
    const r = matchChain([leaf, ca], [tlsa(2, 0, 1, ca)], names);
    assert.ok(r.ok);
    assert.equal(r.depth, 1);
    const wrongName = matchChain([leaf, ca], [tlsa(2, 0, 1, ca)], ['mx9.other.test']);
    assert.deepEqual([wrongName.ok, !wrongName.ok && wrongName.reason, !wrongName.ok && wrongName.tried], [false, 'name-mismatch', 1]);
  });

  test('DANE-TA with the full key in the record: the anchor need not be sent', () => {
    const r = matchChain([leaf], [tlsa(2, 1, 0, ca)], names);
    assert.ok(r.ok);
    // A digest names a key it cannot reproduce: without the anchor in the chain there is nothing to match.
    assert.equal(matchChain([leaf], [tlsa(2, 1, 1, ca)], names).ok, false);
  });

  test('DANE-TA 2 0 0: the full CA certificate in the record anchors a chain sent without it (RFC 7671 5.2.2)', () => {
    const r = matchChain([leaf], [tlsa(2, 0, 0, ca)], names);
    assert.deepEqual(r.ok && [r.record.slice(0, 5), r.depth], ['2 0 0', 1]);
    // Dates count along the chain built from the record, as along a sent one.
    const later = new Date(new Date(ca.validTo).getTime() + 86_400_000);
    const stale = matchChain([leaf], [tlsa(2, 0, 0, ca)], names, later);
    assert.equal(!stale.ok && stale.reason, 'certificate-expired');
  });

  test('DANE-TA by digest with the CA not sent: the missing anchor is what the failure says', () => {
    const r = matchChain([leaf], [tlsa(2, 0, 1, ca)], names);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'anchor-not-sent');
    assert.match(!r.ok ? r.detail : '', new RegExp(`issued by "${ca.subject.split('\n')[0]}.*which the server did not send`));
    // The whole chain sent, the wrong CA named: a plain mismatch, with the records it tried.
    const wrong = matchChain([leaf, ca], [tlsa(2, 0, 1, other)], names);
    assert.equal(!wrong.ok && wrong.reason, 'tlsa-mismatch');
    assert.match(!wrong.ok ? wrong.detail : '', /matched none of 2 0 1 /);
  });

  test('DANE-TA does not match the leaf itself, nor a CA that did not sign it', () => {
    assert.equal(matchChain([leaf, ca], [tlsa(2, 0, 1, leaf)], names).ok, false);
    assert.equal(matchChain([other, ca], [tlsa(2, 0, 1, ca)], names).ok, false);
  });

  test('every record is tried: a mismatch first, a match later', () => {
    const r = matchChain([leaf, ca], [tlsa(3, 1, 1, other), tlsa(2, 0, 1, other), tlsa(3, 1, 1, leaf)], names);
    assert.ok(r.ok);
    const none = matchChain([leaf, ca], [tlsa(3, 1, 1, other), tlsa(2, 1, 1, other)], names);
    assert.deepEqual([none.ok, !none.ok && none.reason, !none.ok && none.tried], [false, 'tlsa-mismatch', 2]);
  });

  test('usable records: usages 2 and 3, selectors 0 and 1, matching 0-2 with the right digest length', () => {
    assert.ok(isUsable(tlsa(3, 1, 1, leaf)));
    assert.ok(isUsable(tlsa(2, 0, 2, ca)));
    assert.equal(isUsable(tlsa(1, 1, 1, leaf)), false, 'PKIX-EE');
    assert.equal(isUsable(tlsa(0, 0, 1, ca)), false, 'PKIX-TA');
    assert.equal(isUsable({ ...tlsa(3, 1, 1, leaf), selector: 2 }), false);
    assert.equal(isUsable({ ...tlsa(3, 1, 1, leaf), matchingType: 3 }), false);
    assert.equal(isUsable({ ...tlsa(3, 1, 1, leaf), data: Buffer.alloc(31) }), false);
  });

  test('the set digest ignores order and changes with any record', () => {
    const a = tlsa(3, 1, 1, leaf);
    const b = tlsa(2, 0, 1, ca);
    assert.equal(tlsaSetDigest([a, b]), tlsaSetDigest([b, a]));
    assert.notEqual(tlsaSetDigest([a]), tlsaSetDigest([a, b]));
  });
});

describe('DANE: the policy table (RFC 7672 2.2, as Postfix)', () => {
  const base = { records: [], changed: false, until: 0, baseDomain: 'mx1.dane.test' };
  const cases: Array<[TlsaState, boolean, DaneLevel, string]> = [
    ['usable', true, 'dane', 'dane'],
    ['usable', true, 'dane-only', 'dane'],
    ['none', true, 'dane', 'may'],
    ['none', true, 'dane-only', 'defer'],
    ['insecure', true, 'dane', 'may'],
    ['insecure', false, 'dane', 'may'],
    ['insecure', false, 'dane-only', 'defer'],
    ['unusable', true, 'dane', 'encrypt'],
    ['unusable', true, 'dane-only', 'defer'],
    ['failed', true, 'dane', 'defer'],
    ['failed', true, 'dane-only', 'defer'],
  ];
  test('a deferral says what DNSSEC said, not only its code', () => {
    assert.equal(
      deferralText(decide('dane', true, 'failed', { ...base, reason: 'dnssec-bogus' })),
      'dnssec-bogus: the TLSA answer failed DNSSEC validation (bogus)',
    );
    assert.match(deferralText(decide('dane-only', true, 'unusable', base)), /^dane-required: .*all unusable/);
    assert.match(deferralText(decide('dane-only', false, 'insecure', base)), /^insecure-mx: /);
  });
  for (const [state, mxSecure, level, expected] of cases) {
    test(`${level}, MX ${mxSecure ? 'secure' : 'insecure'}, TLSA ${state}: ${expected}`, () => {
      const d = decide(level, mxSecure, state, base);
      assert.equal(d.effective, expected);
      if (expected === 'defer') assert.ok(d.reason, 'a deferral says why');
    });
  }
});
