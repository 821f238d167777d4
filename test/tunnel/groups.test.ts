import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { getPlain, parseVerdict, startSServer } from '../support/servers.js';
import { isHandshake, startTunnelService } from '../support/tunnel-service.js';
import { until } from '../support/until.js';

/**
 * `upstream.groups` reaches the handshake: an `s_server` that takes X25519 alone refuses a tunnel
 * that offers P-256 only (the server says why) and serves, then resumes, one offering X25519. What
 * was offered is read from the server's own page (`-www`: the client's supported groups).
 */

/** The groups line the `s_server -www` page prints for the client's offer and for what the two share. */
function groupsOnPage(page: string): { supported: string; shared: string } {
  const supported = /^Supported groups: (.*)$/m.exec(page)?.[1];
  const shared = /^Shared groups: (.*)$/m.exec(page)?.[1];
  assert.ok(supported !== undefined && shared !== undefined, `no groups on the page: ${page.slice(0, 200)}`);
  return { supported, shared };
}

describe('upstream groups', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  test('an X25519-only server: groups [P-256] fails the handshake, [X25519] succeeds and resumes', async () => {
    const s = await startSServer('tls13', cert, ['-groups', 'X25519']);
    const upstream = { host: s.host, port: s.port, servername: 'localhost', ca: cert.certFile };
    const p256 = await startTunnelService({ upstream: { ...upstream, groups: ['P-256'] } });
    const x25519 = await startTunnelService({ upstream: { ...upstream, groups: 'X25519' } });
    try {
      assert.equal(await getPlain(p256.port), '', 'no page through a failed handshake');
      await until(() => /no suitable key share/.test(s.process.output()), 10_000, "the server's key share refusal");
      const [failed] = await p256.waitFor(isHandshake);
      assert.ok(isHandshake(failed) && failed.error !== undefined, `the audit line says it failed: ${JSON.stringify(failed)}`);

      const pages = [await getPlain(x25519.port), await getPlain(x25519.port)];
      assert.deepEqual(
        pages.map((p) => parseVerdict(p).verdict),
        ['New', 'Reused'],
      );
      for (const p of pages) assert.deepEqual(groupsOnPage(p), { supported: 'x25519', shared: 'x25519' });
      const hs = await x25519.waitFor(isHandshake, 2);
      assert.deepEqual(
        hs.map((e) => isHandshake(e) && e.resumed),
        [false, true],
      );
    } finally {
      await p256.stop();
      await x25519.stop();
      await s.stop();
    }
  });

  test('default: hybrid post-quantum first (the server sees X25519MLKEM768 offered before x25519)', async () => {
    const s = await startSServer('tls13', cert);
    const h = await startTunnelService({ upstream: { host: s.host, port: s.port, servername: 'localhost', ca: cert.certFile } });
    try {
      // This s_server's OpenSSL 3.0 has no name for the hybrid group and prints <NULL>; a newer one names it.
      const { supported, shared } = groupsOnPage(await getPlain(h.port));
      assert.match(supported, /^(X25519MLKEM768|<NULL>):x25519:/i);
      assert.equal(shared.split(':')[0], 'x25519');
    } finally {
      await h.stop();
      await s.stop();
    }
  });
});
