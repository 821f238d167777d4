import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { AuditLog } from '../src/audit/audit-log.js';
import type { AuditEvent } from '../src/audit/events.js';
import { parseConfig } from '../src/config/load.js';
import { Service } from '../src/service.js';
import { makeCert } from './support/certs.js';
import { startDnsmasq, type Dnsmasq } from './support/dnsmasq.js';
import { missing } from './support/interop.js';
import { freeLoopbackAddress, freeTcpPort } from './support/ports.js';
import { startPostfix, type Postfix } from './support/postfix.js';

const run = promisify(execFile);
const MESSAGES = 12;

/**
 * End to end, with real programs only: swaks → Postfix (legacy client, relayhost = ticketbooth,
 * no TLS, one connection per message) → ticketbooth (mode mx, MX from dnsmasq) → Postfix
 * (destination: STARTTLS, TLS 1.3 only, maildir delivery).
 */
describe('Postfix → ticketbooth (mx) → Postfix over STARTTLS', { skip: missing('postfix', 'dnsmasq', 'swaks') }, () => {
  let dns: Dnsmasq;
  let dest: Postfix;
  let legacy: Postfix;
  let service: Service;
  const events: AuditEvent[] = [];
  let legacyPort = 0;

  before(async () => {
    const mxAddress = await freeLoopbackAddress(25);
    const cert = makeCert(['mx.dest.test']);
    dns = await startDnsmasq({ mx: ['dest.test,mx.dest.test,10'], hosts: [`mx.dest.test,${mxAddress}`] });
    dest = await startPostfix({
      smtpd: `${mxAddress}:25`,
      maildirDomains: ['dest.test'],
      main: {
        myhostname: 'mx.dest.test',
        smtpd_tls_security_level: 'may',
        smtpd_tls_cert_file: cert.certFile,
        smtpd_tls_key_file: cert.keyFile,
        smtpd_tls_protocols: '>=TLSv1.3',
        smtpd_tls_loglevel: 'summary, cache',
      },
    });

    const audit = new AuditLog();
    audit.on('event', (e) => events.push(e));
    const config = parseConfig(`
listeners:
  - name: smarthost
    type: smtp
    listen: 127.0.0.1:0
    hostname: relay.ticketbooth.test
    route: { mode: mx }
    tls: { level: may }
dns: { servers: ["${dns.server}"] }
`);
    service = await Service.start(config, audit);
    const tbPort = service.addressOf('smarthost').port;

    legacyPort = await freeTcpPort();
    legacy = await startPostfix({
      smtpd: `127.0.0.1:${legacyPort}`,
      main: {
        myhostname: 'legacy.client.test',
        relayhost: `[127.0.0.1]:${tbPort}`,
        smtp_tls_security_level: 'none',
        smtp_connection_cache_on_demand: 'no',
        smtp_destination_concurrency_limit: '4',
      },
    });
  });

  after(async () => {
    await legacy?.stop();
    await service?.stop(2000);
    await dest?.stop();
    await dns?.stop();
  });

  test('every message arrives exactly once, over TLS 1.3, and the destination resumed sessions', async (t) => {
    const ids = Array.from({ length: MESSAGES }, (_, i) => `e2e-${i}-${process.pid}`);
    for (const id of ids) {
      await run('swaks', [
        '--server', '127.0.0.1', '--port', String(legacyPort), '--from', 'sender@legacy.test', '--to', 'user@dest.test',
        '--header', `Message-Id: <${id}@legacy.test>`, '--header', `Subject: ${id}`, '--body', `body of ${id}`,
      ]);
    }
    const files = await dest.waitForDelivered(MESSAGES, 90_000);
    // Each message once: as many files as messages, and each Message-Id exactly once.
    const seen = files.map((f) => /^Message-Id: <([^>]+)>/im.exec(readFileSync(f, 'utf8'))?.[1]).sort();
    assert.deepEqual(seen, ids.map((id) => `${id}@legacy.test`).sort());

    // The legacy Postfix saw ticketbooth's 250 only after the destination queued the message.
    await legacy.waitForLog(/status=sent/, MESSAGES);
    assert.equal((legacy.log().match(/status=sent \(250 2\.0\.0 Ok: queued as/g) ?? []).length, MESSAGES, legacy.log().slice(-2000));

    const destLog = dest.log();
    const tls13 = (destLog.match(/TLS connection established from .*TLSv1\.3/g) ?? []).length;
    const resumed = (destLog.match(/Reusing old session/g) ?? []).length;
    assert.equal(tls13, MESSAGES, 'every delivery went over TLS 1.3');
    assert.ok(resumed > 0, `the destination resumed sessions (${resumed}/${MESSAGES})`);
    t.diagnostic(`destination: ${resumed}/${MESSAGES} TLS sessions resumed`);

    const tx = events.filter((e) => e.event === 'smtp.transaction');
    assert.equal(tx.length, MESSAGES);
    assert.ok(tx.every((e) => e.event === 'smtp.transaction' && e.code === 250 && e.recipients === 1 && e.nextHop?.startsWith('mx.dest.test[')));
    const handshakes = events.filter((e) => e.event === 'tls.handshake');
    assert.equal(handshakes.filter((e) => e.event === 'tls.handshake' && e.resumed).length, resumed, 'our audit log agrees with the destination');
  });
});
