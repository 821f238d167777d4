import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeIssuedCert } from '../support/certs.js';
import { startPolicyServer } from '../support/policy-server.js';
import { dnssecMissing, startDnssec, type DnssecDns } from '../support/dnssec.js';
import { missing } from '../support/interop.js';
import { freeLoopbackAddress, freeTcpPort } from '../support/ports.js';
import { assertEachOnce, sendThroughLegacy, startLegacyClient, waitForHandshakes } from '../support/postfix-chain.js';
import { startPostfix, tls13Destination, type Postfix } from '../support/postfix.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

/**
 * swaks → Postfix (legacy, relayhost = ticketbooth) → ticketbooth → Postfix destination (TLS 1.3
 * only; one ticket per full handshake, none on resumption), under a receiver's policy:
 * - `dane`: MX and TLSA from a signed zone through unbound;
 * - `sts`: an enforced MTA-STS policy from a real HTTPS policy host, the MX verified by WebPKI
 *   (a test CA the route trusts).
 * Resumption under either is judged by the destination's own log.
 */
const skip = missing('postfix', 'swaks') ?? dnssecMissing();

interface DaneChain {
  dest: Postfix;
  legacy: Postfix;
  sh: Smarthost;
  legacyPort: number;
  stop(): Promise<void>;
}

type Kind = 'dane' | 'sts';

async function startDaneChain(kind: Kind, reuse: 'never' | 'adaptive'): Promise<DaneChain> {
  const mxAddress = await freeLoopbackAddress(25);
  const cert = makeIssuedCert(['mx.dest.test', 'mta-sts.dest.test']);
  const caFile = join(mkdtempSync(join(tmpdir(), 'tb-policy-')), 'ca.pem');
  writeFileSync(caFile, cert.ca);
  const spki = new X509Certificate(cert.cert).publicKey.export({ type: 'spki', format: 'der' });
  const started: Array<{ stop(): Promise<void> }> = [];
  const stop = async (): Promise<void> => {
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const web = await startPolicyServer(await freeLoopbackAddress(443), cert);
    started.push(web);
    web.policies.set('dest.test', 'version: STSv1\nmode: enforce\nmx: mx.dest.test\nmax_age: 86400\n');
    const policy =
      kind === 'dane'
        ? [`_25._tcp.mx 60 IN TLSA 3 1 1 ${createHash('sha256').update(spki).digest('hex')}`]
        : ['_mta-sts 60 IN TXT "v=STSv1; id=1"', `mta-sts 60 IN A ${web.address}`];
    const dns: DnssecDns = await startDnssec([
      { origin: 'dest.test', security: 'anchored', records: ['@ 60 IN MX 10 mx', `mx 60 IN A ${mxAddress}`, ...policy] },
    ]);
    started.push(dns);
    const dest = await startPostfix({
      smtpd: `${mxAddress}:25`,
      maildirDomains: ['dest.test'],
      main: { myhostname: 'mx.dest.test', ...tls13Destination(cert) },
    });
    started.push(dest);
    const sh = await startSmarthost(
      // One upstream connection per message: this measures resumption, not the connection cache.
      { route: { mode: 'mx' }, tls: { level: kind === 'dane' ? 'dane' : 'may', ca: caFile }, connectionCache: { enabled: false } },
      { cache: { reuse }, dns: { servers: [dns.resolver] }, mtaSts: { ca: caFile } },
    );
    started.push(sh);
    const legacyPort = await freeTcpPort();
    // One delivery at a time: each connection can use the ticket the one before it received.
    const legacy = await startLegacyClient(legacyPort, sh.port, 1);
    started.push(legacy);
    return { dest, legacy, sh, legacyPort, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

for (const [kind, reuse, messages, least] of [
  ['dane', 'never', 12, 0.49],
  ['dane', 'adaptive', 34, 0.97],
  ['sts', 'never', 12, 0.49],
] as const) {
  describe(`Postfix → ticketbooth (${kind}, reuse: ${reuse}) → Postfix`, { skip }, () => {
    let chain: DaneChain;
    before(async () => {
      chain = await startDaneChain(kind, reuse);
    });
    after(() => chain?.stop());

    test(`every message once, each peer authenticated by the policy, the destination resumed at least ${least * 100}%`, async (t) => {
      const ids = Array.from({ length: messages }, (_, i) => `${kind}-${reuse}-${i}-${process.pid}`);
      for (const id of ids) await sendThroughLegacy(chain.legacyPort, id);
      assertEachOnce(await chain.dest.waitForDelivered(messages, 90_000), ids);
      await chain.legacy.waitForLog(/status=sent/, messages);

      const tx = await chain.sh.waitForTransactions(messages);
      const authenticated = (e: (typeof tx)[number]): boolean =>
        kind === 'dane'
          ? e.dane?.applied === 'dane' && e.dane.auth === 'Verified'
          : e.sts?.mode === 'enforce' && e.sts.result === 'success';
      assert.ok(
        tx.every((e) => e.code === 250 && authenticated(e)),
        JSON.stringify(tx.find((e) => !authenticated(e))),
      );
      const handshakes = await waitForHandshakes(chain.sh, messages);
      await chain.dest.waitForLog(/TLS connection established from .*TLSv1\.3/, messages);
      const resumed = (chain.dest.log().match(/Reusing old session/g) ?? []).length;
      t.diagnostic(`destination: ${resumed}/${messages} TLS sessions resumed under ${kind} (reuse: ${reuse})`);
      assert.ok(resumed / messages >= least, `resumed ${resumed}/${messages}`);
      assert.equal(handshakes.filter((e) => e.resumed).length, resumed, 'our audit log agrees with the destination');
      // The full handshakes were authenticated; the resumed ones were made under the same policy (one trust key).
      assert.equal(new Set(handshakes.map((e) => e.key)).size, 1);
      if (kind === 'dane') assert.ok(handshakes.filter((e) => !e.resumed).every((e) => /^3 1 1 /.test(e.dane?.matched ?? '')));
      else assert.ok(handshakes.every((e) => e.sts?.result === 'success' && e.sts.mode === 'enforce'));
    });
  });
}
