import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { missing } from '../support/interop.js';
import { freeTcpPort } from '../support/ports.js';
import { startPostfix } from '../support/postfix.js';
import { dial, message } from '../support/smtp-client.js';
import { startFaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost } from '../support/smarthost.js';
import { until } from '../support/until.js';

/**
 * The check: a Postfix destination that announces DSN gets RET, ENVID, NOTIFY and ORCPT
 * through ticketbooth as sent, and its own success notices (RFC 3464 `Action: delivered`, quoting
 * ENVID and ORCPT) reach the sender's host, a fault server Postfix relays them to.
 */
describe('DSN through ticketbooth to a Postfix destination', { skip: missing('postfix') }, () => {
  test('RET=HDRS ENVID and NOTIFY=SUCCESS,DELAY ORCPT reach Postfix, whose success notice reaches the sender', async () => {
    const sender = await startFaultServer();
    const destPort = await freeTcpPort();
    const dest = await startPostfix({
      smtpd: `127.0.0.1:${destPort}`,
      maildirDomains: ['dest.test'],
      main: { myhostname: 'mx.dest.test', relayhost: `[127.0.0.1]:${sender.port}` },
    });
    const sh = await startSmarthost({
      route: { mode: 'relay', host: '127.0.0.1', port: destPort },
      tls: { level: 'none' },
      spool: { dir: mkdtempSync(join(tmpdir(), 'tb-dsn-postfix-')) },
    });
    try {
      const d = await dial(sh.port);
      try {
        assert.ok((await d.cmd('EHLO client.test')).lines.includes('DSN'));
        for (const line of [
          'MAIL FROM:<a@client.test> RET=HDRS ENVID=QQ314159+2Bpf',
          'RCPT TO:<x@dest.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+2Btag@dest.test',
          'RCPT TO:<y@dest.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;y@dest.test',
        ]) {
          assert.equal((await d.cmd(line)).code, 250, line);
        }
        assert.equal((await d.cmd('DATA')).code, 354);
        d.write(message('dsn-postfix').replace(/^\./gm, '..') + '.\r\n');
        assert.equal((await d.read(30_000)).code, 250);
      } finally {
        d.close();
      }
      await dest.waitForDelivered(2);
      const [tx] = await sh.waitForTransactions(1);
      assert.deepEqual(tx.dsn, { passedOn: 2, local: 0 });
      await until(() => sender.stored.length >= 1, 60_000, "Postfix's success notice at the sender's host");
      assert.equal(sender.stored.length, 1);
      const notice = sender.stored[0];
      assert.match(notice.mailLine.toString('latin1'), /^MAIL FROM:<>( |$)/);
      const text = notice.body.toString('latin1');
      assert.match(text, /^Reporting-MTA: dns; ?mx\.dest\.test\r$/m);
      assert.match(text, /^Original-Envelope-Id: QQ314159\+pf\r$/m);
      // RET=HDRS: the headers only, not the message.
      assert.match(text, /^Content-Type: text\/rfc822-headers/m);
      assert.doesNotMatch(text, /Hello dsn-postfix/);
      const blocks = text.split(/\r\n\r\n/).filter((b) => /^Final-Recipient:/m.test(b));
      assert.deepEqual(
        blocks.map((b) => [/^Original-Recipient: (.*)\r?$/m.exec(b)?.[1], /^Action: (\S+)/m.exec(b)?.[1]]),
        [
          ['rfc822;x+tag@dest.test', 'delivered'],
          ['rfc822;y@dest.test', 'delivered'],
        ],
      );
    } finally {
      await sh.stop();
      await dest.stop();
      await sender.stop();
    }
  });
});
