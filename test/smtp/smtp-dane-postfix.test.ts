import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { makeCert } from '../support/certs.js';
import { dnssecMissing, startDnssec, type DnssecDns } from '../support/dnssec.js';
import { missing } from '../support/interop.js';
import { freeLoopbackAddress, freeTcpPort } from '../support/ports.js';
import { assertEachOnce, sendThroughLegacy, startLegacyClient, waitForHandshakes } from '../support/postfix-chain.js';
import { startPostfix, tls13Destination, type Postfix } from '../support/postfix.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

/**
 * swaks → Postfix (legacy, relayhost = ticketbooth) → ticketbooth (`dane`, MX and TLSA from a
 * signed zone through unbound) → Postfix destination (TLS 1.3 only; one ticket per full handshake,
 * none on resumption). Resumption under DANE is judged by the destination's own log.
 */
const skip = missing('postfix', 'swaks') ?? dnssecMissing();

interface DaneChain {
  dest: Postfix;
  legacy: Postfix;
  sh: Smarthost;
  legacyPort: number;
  stop(): Promise<void>;
}

async function startDaneChain(reuse: 'never' | 'adaptive'): Promise<DaneChain> {
  const mxAddress = await freeLoopbackAddress(25);
  const cert = makeCert(['mx.dest.test']);
  const spki = new X509Certificate(cert.cert).publicKey.export({ type: 'spki', format: 'der' });
  const started: Array<{ stop(): Promise<void> }> = [];
  const stop = async (): Promise<void> => {
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const dns: DnssecDns = await startDnssec([
      {
        origin: 'dest.test',
        security: 'anchored',
        records: [
          '@ 60 IN MX 10 mx',
          `mx 60 IN A ${mxAddress}`,
          `_25._tcp.mx 60 IN TLSA 3 1 1 ${createHash('sha256').update(spki).digest('hex')}`,
        ],
      },
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
      { route: { mode: 'mx' }, tls: { level: 'dane' }, connectionCache: { enabled: false } },
      { cache: { reuse }, dns: { servers: [dns.resolver] } },
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

for (const [reuse, messages, least] of [
  ['never', 12, 0.49],
  ['adaptive', 34, 0.97],
] as const) {
  describe(`Postfix → ticketbooth (dane, reuse: ${reuse}) → Postfix`, { skip }, () => {
    let chain: DaneChain;
    before(async () => {
      chain = await startDaneChain(reuse);
    });
    after(() => chain?.stop());

    test(`every message once, each peer Verified by TLSA, the destination resumed at least ${least * 100}%`, async (t) => {
      const ids = Array.from({ length: messages }, (_, i) => `dane-${reuse}-${i}-${process.pid}`);
      for (const id of ids) await sendThroughLegacy(chain.legacyPort, id);
      assertEachOnce(await chain.dest.waitForDelivered(messages, 90_000), ids);
      await chain.legacy.waitForLog(/status=sent/, messages);

      const tx = await chain.sh.waitForTransactions(messages);
      assert.ok(
        tx.every((e) => e.code === 250 && e.dane?.applied === 'dane' && e.dane.auth === 'Verified'),
        JSON.stringify(tx.find((e) => e.dane?.auth !== 'Verified')),
      );
      const handshakes = await waitForHandshakes(chain.sh, messages);
      await chain.dest.waitForLog(/TLS connection established from .*TLSv1\.3/, messages);
      const resumed = (chain.dest.log().match(/Reusing old session/g) ?? []).length;
      t.diagnostic(`destination: ${resumed}/${messages} TLS sessions resumed under dane (reuse: ${reuse})`);
      assert.ok(resumed / messages >= least, `resumed ${resumed}/${messages}`);
      assert.equal(handshakes.filter((e) => e.resumed).length, resumed, 'our audit log agrees with the destination');
      // The full handshakes matched the TLSA record; the resumed ones were made under the same set (one trust key).
      assert.equal(new Set(handshakes.map((e) => e.key)).size, 1);
      assert.ok(handshakes.filter((e) => !e.resumed).every((e) => /^3 1 1 /.test(e.dane?.matched ?? '')));
    });
  });
}
