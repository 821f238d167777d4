import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cacheKey, type TrustInputs } from '../../../src/resumption/cache-key.js';

/** The trust key: a session is only ever offered under the trust decision it was made under. */

describe('trust key: every input of the trust decision splits the cache', () => {
  const base: TrustInputs = { host: 'mx.example', port: 465, servername: 'mx.example', verify: 'name' };
  const variants: Array<[string, Partial<TrustInputs>]> = [
    ['host', { host: 'mx2.example' }],
    ['port', { port: 587 }],
    ['servername', { servername: 'other.example' }],
    ['CA set', { ca: '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n' }],
    ['verify chain', { verify: 'chain' }],
    ['verify none', { verify: 'none' }],
    ['verify name', { verifyName: 'alias.example' }],
    ['minVersion', { minVersion: 'TLSv1.3' }],
    ['maxVersion', { maxVersion: 'TLSv1.2' }],
    ['ciphers', { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }],
    ['client certificate', { clientCert: 'CERT' }],
    ['EHLO name', { ehloName: 'mx1.example' }],
    ['DANE decision', { dane: 'dane:dane:abc' }],
    ['MTA-STS policy', { sts: 'enforce:20260101' }],
  ];
  const baseKey = cacheKey(base);
  for (const [what, change] of variants) {
    test(`${what} changes the key`, () => {
      assert.notEqual(cacheKey({ ...base, ...change }).id, baseKey.id);
    });
  }
  test('the same decision gives the same key; names are case-insensitive; the short form is 12 hex', () => {
    assert.equal(cacheKey({ ...base, host: 'MX.Example', servername: 'Mx.example' }).id, baseKey.id);
    assert.match(baseKey.short, /^[0-9a-f]{12}$/);
    assert.notEqual(cacheKey({ ...base, ca: 'A' }).id, cacheKey({ ...base, ca: 'B' }).id);
  });
  test("DANE-TA's reference names (the MX host, the next-hop domain) split the key: no resumption for another domain on the host", () => {
    const dane = { ...base, dane: 'dane:dane:abc' };
    const forA = cacheKey({ ...dane, daneNames: ['mx.example', 'a.example'] }).id;
    assert.notEqual(cacheKey({ ...dane, daneNames: ['mx.example', 'b.example'] }).id, forA);
    assert.notEqual(cacheKey(dane).id, forA);
    assert.equal(cacheKey({ ...dane, daneNames: ['MX.example', 'A.Example'] }).id, forA);
  });
  test('keys do not change between versions: sessions in a shared store stay reachable after an upgrade', () => {
    // Golden values from the key as first released; a change here orphans every stored session.
    assert.equal(cacheKey({ host: 'a', port: 1, servername: 'a', verify: 'name' }).id.slice(0, 16), '62a7c80008934dc6');
    const withFiles = cacheKey({ host: 'a', port: 1, servername: 'a', ca: '-----CA-----', verify: 'name', clientCert: 'CERT' });
    assert.equal(withFiles.id.slice(0, 16), '16a922db03c3d533');
    assert.equal(
      cacheKey({ host: 'a', port: 1, servername: 'a', ca: '-----CA-----', verify: 'name', clientCert: 'CERT' }).id,
      withFiles.id,
    );
  });
});
