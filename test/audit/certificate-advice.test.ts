import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { noticeFailures } from '../../src/audit/failure-notices.js';
import type { Service } from '../../src/service/service.js';
import { issueCert, makeCa, type CertPair } from '../support/certs.js';
import { startSServer } from '../support/s-server.js';
import { startFaultServer } from '../support/smtp-fault-server.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startSmarthost } from '../support/smarthost.js';
import { isHandshake, startTunnelService } from '../support/tunnel-service.js';

/**
 * A server whose certificate comes from a CA ticketbooth was not given: the operator reads which
 * setting to change (as the listener's type spells it), not Node's "try running Node.js with
 * --use-system-ca". Real servers: a Postfix-like SMTP server with STARTTLS, `openssl s_server`.
 * The audit line keeps Node's own words and code: it is the machine record.
 */
describe('certificate failures name the setting to change', () => {
  let ca: CertPair;
  /** A leaf for localhost and 127.0.0.1 issued by `ca`, sent without it (Node: UNABLE_TO_VERIFY_LEAF_SIGNATURE). */
  let leaf: CertPair;
  before(() => {
    ca = makeCa();
    const issued = issueCert(ca, ['localhost', '127.0.0.1']);
    const leafFile = join(dirname(issued.certFile), 'leaf.pem');
    leaf = { cert: readFileSync(leafFile, 'utf8'), key: issued.key, certFile: leafFile, keyFile: issued.keyFile };
  });

  const typeOf = (service: Service) => (name: string) => service.config.listeners.find((l) => l.name === name)?.type;

  test('smtp: the stderr notice says `tls.ca`, the client’s 451 only the cause', async () => {
    const hop = await startFaultServer({ cert: leaf, starttls: true });
    const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'verify' } });
    const notices: string[] = [];
    const stop = noticeFailures(sh.service.audit, (l) => notices.push(l), typeOf(sh.service));
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      const r = await sendMessage(d, 'a@client.test', ['b@dest.test'], message('unknown-ca'));
      d.close();
      const rcpt = r.replies[1].raw;
      // The client's reply may end in a bounce to a sender: the cause, not the operator's settings.
      assert.match(rcpt, /^451 4\.7\.5 TLS with 127\.0\.0\.1:\d+ failed: .*unable to verify the first certificate/);
      assert.doesNotMatch(rcpt, /use-system-ca|tls\.ca/);
      assert.equal(hop.stored.length, 0);
      const [h] = await sh.waitForEvents('tls.handshake', 1);
      assert.equal(h.errorCode, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      assert.equal(notices.length, 1, notices.join('\n'));
      assert.match(
        notices[0],
        /^sh: TLS with 127\.0\.0\.1:\d+ failed \(certificate\): .*; set `tls\.ca` or `route\.tls\.ca` to a PEM file/,
      );
      assert.doesNotMatch(notices[0], /use-system-ca/);
    } finally {
      stop();
      await sh.stop();
      await hop.stop();
    }
  });

  describe('tunnel, to openssl s_server', () => {
    let server: Awaited<ReturnType<typeof startSServer>>;
    before(async () => {
      server = await startSServer('tls13', leaf);
    });
    after(() => server.stop());

    /** One client through a tunnel with this `upstream`: the failed handshake's line and the notice it gave. */
    async function failedThrough(upstream: Record<string, unknown>): Promise<{ line: HandshakeEvent; notices: string[] }> {
      const t = await startTunnelService({ upstream: { host: '127.0.0.1', port: server.port, ...upstream } });
      const notices: string[] = [];
      const stop = noticeFailures(t.service.audit, (l) => notices.push(l), typeOf(t.service));
      try {
        const client = connect(t.port, '127.0.0.1');
        client.on('error', () => undefined);
        const [line] = (await t.waitFor(isHandshake)) as HandshakeEvent[];
        client.destroy();
        return { line, notices };
      } finally {
        stop();
        await t.stop();
      }
    }

    test('a CA it was not given: `upstream.ca`', async () => {
      const { line, notices } = await failedThrough({ servername: 'localhost' });
      assert.equal(line.errorCode, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      assert.match(line.error ?? '', /use-system-ca/, 'the audit line keeps Node’s words');
      assert.equal(notices.length, 1, notices.join('\n'));
      assert.match(
        notices[0],
        /^tunnel: TLS with 127\.0\.0\.1:\d+ failed \(certificate\): .*; set `upstream\.ca` to a PEM file holding the CA/,
      );
      assert.doesNotMatch(notices[0], /use-system-ca/);
    });

    test('the right CA, another name: `upstream.servername`', async () => {
      const { line, notices } = await failedThrough({ servername: 'other.test', ca: ca.certFile });
      assert.equal(line.errorCode, 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.match(notices[0], /failed \(certificate\): .*; the certificate does not carry the name asked for: set `upstream\.servername`/);
    });
  });
});
