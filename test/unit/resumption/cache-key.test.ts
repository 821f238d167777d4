import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { keyOf, TRUST_FIELDS, type TlsTarget } from '../../../src/upstream/tls-target.js';

/** The trust key: a session is only ever offered under the trust decision it was made under. */

const base: TlsTarget = { host: 'mx.example', port: 465, servername: 'mx.example', verify: 'name' };
type Dane = NonNullable<TlsTarget['dane']>;
const dane = (change: Partial<Dane> = {}): Dane => ({
  level: 'dane',
  effective: 'dane',
  mxDnssec: 'secure',
  tlsa: 'usable',
  records: [],
  digest: 'abc',
  changed: false,
  baseDomain: 'mx.example',
  until: 0,
  names: ['mx.example', 'a.example'],
  mxHost: 'mx.example',
  ...change,
});
const sts = { domain: 'a.example', id: '20260101', mode: 'enforce', mxMatch: true, mxHost: 'mx.example' } as const;

/**
 * For every TlsTarget field (the compiler asks for each), values other than `base`'s: for a `key`
 * field each is another trust decision, for a `not-trust` field the same one.
 */
const OTHER_VALUES: { [K in keyof TlsTarget]-?: Array<TlsTarget[K]> } = {
  host: ['mx2.example'],
  port: [587],
  servername: ['other.example'],
  ca: ['-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n', '-----BEGIN CERTIFICATE-----\nY\n-----END CERTIFICATE-----\n'],
  verify: ['chain', 'none'],
  verifyName: ['alias.example'],
  verifyMatch: ['dot-nexthop'],
  minVersion: ['TLSv1.3'],
  maxVersion: ['TLSv1.2'],
  ciphers: ['ECDHE-ECDSA-AES128-GCM-SHA256'],
  groups: ['X25519', 'P-256:X25519MLKEM768'],
  cert: ['CERT', 'CERT2'],
  key: ['KEY'],
  ehloName: ['mx1.example'],
  dane: [
    dane(),
    dane({ level: 'dane-only' }),
    dane({ effective: 'encrypt' }),
    dane({ digest: 'def' }), // a TLSA rollover
    dane({ names: ['mx.example', 'b.example'] }), // another next hop sharing the host
  ],
  sts: [sts, { ...sts, mode: 'testing' }, { ...sts, id: '20260102' }],
};

describe('trust key: every input of the trust decision splits the cache', () => {
  const baseKey = keyOf(base).id;
  for (const [field, how] of Object.entries(TRUST_FIELDS)) {
    const values = OTHER_VALUES[field as keyof TlsTarget] as unknown[];
    if (how.trust === 'key') {
      test(`${field} is in the key: each other value is another key`, () => {
        const ids = values.map((v) => keyOf({ ...base, [field]: v }).id);
        assert.ok(ids.length > 0);
        assert.equal(new Set([baseKey, ...ids]).size, ids.length + 1, `${field}: ${ids.join(' ')}`);
      });
    } else {
      test(`${field} is not in the key (${how.why})`, () => {
        for (const v of values) assert.equal(keyOf({ ...base, [field]: v }).id, baseKey);
      });
    }
  }
  test('the same decision gives the same key; names are case-insensitive; the short form is 12 hex', () => {
    assert.equal(keyOf({ ...base, host: 'MX.Example', servername: 'Mx.example' }).id, baseKey);
    assert.equal(keyOf({ ...base, servername: undefined }).id, baseKey, 'the servername defaults to the host');
    assert.equal(keyOf({ ...base, verifyName: 'MX.example' }).id, baseKey, 'the verify name defaults to the servername');
    assert.equal(keyOf({ ...base, verifyMatch: 'exact' }).id, baseKey, 'exact is the default match');
    assert.equal(
      keyOf({ ...base, sts: { domain: 'a.example', mode: 'none', mxHost: 'mx.example' } }).id,
      baseKey,
      'no policy checks nothing more',
    );
    assert.equal(keyOf({ ...base, dane: dane({ names: ['MX.example', 'A.Example'] }) }).id, keyOf({ ...base, dane: dane() }).id);
    assert.match(keyOf(base).short, /^[0-9a-f]{12}$/);
  });
  test('keys do not change between versions: sessions in a shared store stay reachable after an upgrade', () => {
    // Golden values from the key as first released; a change here orphans every stored session.
    assert.equal(keyOf({ host: 'a', port: 1, servername: 'a', verify: 'name' }).id.slice(0, 16), '62a7c80008934dc6');
    const withFiles = keyOf({ host: 'a', port: 1, servername: 'a', ca: '-----CA-----', verify: 'name', cert: 'CERT' });
    assert.equal(withFiles.id.slice(0, 16), '16a922db03c3d533');
    assert.equal(keyOf({ host: 'a', port: 1, servername: 'a', ca: '-----CA-----', verify: 'name', cert: 'CERT' }).id, withFiles.id);
  });
});
