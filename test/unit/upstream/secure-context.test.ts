import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { secureContextFor } from '../../../src/upstream/secure-context.js';
import { connectOptions, type TlsTarget } from '../../../src/upstream/tls-target.js';

/** One SecureContext per TLS configuration: shared where the configuration is the same, never across trust decisions. */

const caA = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'certs', 'ca-a.pem'), 'utf8');
const caB = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'certs', 'ca-b.pem'), 'utf8');
const base: TlsTarget = { host: 'mx.example', port: 25, verify: 'name', ca: caA };

describe('secure contexts', () => {
  test('the same configuration shares one context, whatever the host, port or servername', () => {
    const ctx = secureContextFor(base);
    assert.equal(secureContextFor({ ...base }), ctx);
    assert.equal(secureContextFor({ ...base, host: 'mx2.example', port: 587, servername: 'x.example', ehloName: 'n1' }), ctx);
    assert.equal(connectOptions(base).secureContext, ctx);
  });

  test('another CA set, client certificate, cipher list or version bound never shares it', () => {
    const ctx = secureContextFor(base);
    const others: Array<[string, TlsTarget]> = [
      ['another CA', { ...base, ca: caB }],
      ['the system CAs', { ...base, ca: undefined }],
      ['ciphers', { ...base, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }],
      ['minVersion', { ...base, minVersion: 'TLSv1.3' }],
      ['maxVersion', { ...base, maxVersion: 'TLSv1.2' }],
    ];
    const seen = new Set([ctx]);
    for (const [what, t] of others) {
      const other = secureContextFor(t);
      assert.ok(!seen.has(other), what);
      seen.add(other);
    }
  });

  test('connect options carry only what varies per connection besides the context', () => {
    const o = connectOptions({ ...base, servername: 'mx.example' });
    assert.deepEqual(Object.keys(o).sort(), ['checkServerIdentity', 'host', 'port', 'rejectUnauthorized', 'secureContext', 'servername']);
  });
});
