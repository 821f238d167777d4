import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { policyFor, tlsTargetFor } from '../../../src/smtp/tls-policy.js';
import { originResolver } from '../../../src/upstream/http-origin.js';
import { secureContextFor } from '../../../src/upstream/secure-context.js';
import { connectOptions, keyOf, prepare, type TlsTarget } from '../../../src/upstream/tls-target.js';

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

  test('another CA set, client certificate, cipher list, group list or version bound never shares it', () => {
    const ctx = secureContextFor(base);
    const others: Array<[string, TlsTarget]> = [
      ['another CA', { ...base, ca: caB }],
      ['the system CAs', { ...base, ca: undefined }],
      ['ciphers', { ...base, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }],
      ['minVersion', { ...base, minVersion: 'TLSv1.3' }],
      ['maxVersion', { ...base, maxVersion: 'TLSv1.2' }],
      ['groups', { ...base, groups: 'X25519' }],
      ['other groups', { ...base, groups: 'P-256:X25519' }],
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

  test('a target is prepared once: the same key and options on every dial, a failure on every dial', () => {
    const t: TlsTarget = { ...base, servername: 'mx.example' };
    const p = prepare(t);
    assert.equal(prepare(t), p);
    assert.deepEqual(p.key, keyOf(t));
    assert.equal(p.options(), p.options());
    assert.equal(p.options().secureContext, secureContextFor(t));
    const bad = prepare({ ...base, ciphers: 'NO-SUCH-CIPHER' });
    assert.throws(() => bad.options());
    assert.throws(() => bad.options(), 'not kept as a success');
  });
});

describe('groups reach every kind of upstream', () => {
  test('an SMTP route and an HTTP origin carry their groups into the target', () => {
    const policy = policyFor('relay', { groups: 'X25519MLKEM768:X25519' }, { groups: 'X25519' }, () => '');
    const hop = { connect: '192.0.2.1', port: 25, hostName: 'relay.example', nextHop: 'relay.example' };
    assert.equal(tlsTargetFor(policy, 'secure', hop, 'client.example')?.groups, 'X25519', "the route's own tls wins");
    const config = parseConfig(
      JSON.stringify({
        listeners: [{ name: 'web', type: 'http', listen: '127.0.0.1:0', upstreams: { 'a.example': { groups: ['P-256'] } } }],
      }),
    );
    const web = config.listeners[0];
    assert.ok(web.type === 'http');
    const resolve = originResolver(web);
    assert.equal(resolve('a.example', undefined).groups, 'P-256');
    assert.equal(resolve('b.example', undefined).groups, undefined, "an origin not listed: Node's default");
  });
});
