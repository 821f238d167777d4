import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { missing } from '../support/interop.js';
import { startExim, startOpenSmtpd, startSendmail, type LegacyMta } from '../support/legacy-mtas.js';
import { freeTcpPort } from '../support/ports.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { dial, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { missingUnpacked } from '../support/unpacked-debs.js';
import { until } from '../support/until.js';

/**
 * Issue 23's check with the other legacy MTAs on the SMTP front (their examples/mta/ configs, as
 * in smtp-legacy-mtas.test.ts): 10 messages, each for one recipient in each of three domains,
 * through the MTA and ticketbooth (with a spool) to three next hops. Every copy once, and no
 * deferral in the MTA's log. How many next hops each of ticketbooth's transactions spanned says
 * whether the MTA itself split the message.
 */
const DOMAINS = ['d1.test', 'd2.test', 'd3.test'] as const;
const MESSAGES = 10;

/**
 * What each MTA's log shows of a deferred delivery: Exim's ` == ` line, OpenSMTPD's
 * `result="TempFail"` (seen for the 452 without a spool); sendmail here logs nowhere but its queue
 * directory, where a deferred message stays as its `qf` file.
 */
const DEFERRAL: Record<string, RegExp> = {
  'Exim 4': / == /g,
  OpenSMTPD: /result="?TempFail/g,
  sendmail: /\bqf\w+/g,
};

async function inject(port: number, id: string): Promise<void> {
  const d = await dial(port);
  await d.cmd('EHLO injector.test');
  const body = `From: sender@legacy.test\r\nMessage-Id: <${id}@legacy.test>\r\nSubject: ${id}\r\n\r\nbody of ${id}\r\n`;
  const sent = await sendMessage(
    d,
    'sender@legacy.test',
    DOMAINS.map((dom) => `user@${dom}`),
    body,
  );
  assert.equal(sent.final.code, 250, JSON.stringify(sent.replies));
  await d.cmd('QUIT');
  d.close();
}

function suite(name: string, skip: string | undefined, start: (port: number, tbPort: number) => Promise<LegacyMta>): void {
  describe(`${name} → ticketbooth SMTP front (spool) → three next hops`, { skip }, () => {
    let hops: FaultServer[];
    let sh: Smarthost;
    let mta: LegacyMta;
    let spool = '';
    before(async () => {
      hops = await Promise.all(DOMAINS.map(() => startFaultServer()));
      spool = mkdtempSync(join(tmpdir(), 'tb-spool-mta-'));
      sh = await startSmarthost({
        route: { mode: 'relay', host: '127.0.0.1', port: 9 },
        transport: Object.fromEntries(DOMAINS.map((d, i) => [d, { mode: 'relay', host: '127.0.0.1', port: hops[i].port }])),
        tls: { level: 'none' },
        spool: { dir: spool },
      });
      mta = await start(await freeTcpPort(), sh.port);
    });
    after(async () => {
      await mta?.stop();
      await sh?.stop();
      for (const h of hops ?? []) await h.stop();
    });

    test(`${MESSAGES} messages × ${DOMAINS.length} domains: every copy once, no deferral in its log`, async (t) => {
      const started = performance.now();
      const ids = Array.from({ length: MESSAGES }, (_, i) => `${name.split(' ')[0]}-fan-${i}-${process.pid}`);
      for (const id of ids) await inject(mta.port, id);
      await until(
        () => hops.every((h) => h.stored.length >= MESSAGES),
        90_000,
        () => `${MESSAGES} copies at each hop (${hops.map((h) => h.stored.length).join('/')}); ${name} log:\n${mta.log().slice(-3000)}`,
      );
      for (const h of hops) {
        const seen = h.stored.map((m) => /^Message-Id: <([^@>]+)@/im.exec(m.body.toString('latin1'))?.[1]).sort();
        assert.deepEqual(seen, [...ids].sort(), 'each message once at each hop');
      }
      // sendmail removes a delivered message's queue files just after the delivery: wait for that.
      const deferred = (): number => (mta.log().match(DEFERRAL[name]) ?? []).length;
      if (name === 'sendmail')
        await until(
          () => deferred() === 0,
          30_000,
          () => `an empty queue: ${mta.log()}`,
        ).catch(() => undefined);
      const deferrals = deferred();
      // A hop stores the message before ticketbooth has ended the transaction (its lines, the body
      // file's removal): wait for the 30 lines, written once the body is gone, before counting.
      const spans = (await sh.waitForTransactions(MESSAGES * DOMAINS.length, 30_000)).map((x) => x.hops ?? 1);
      t.diagnostic(
        `${name}: ${MESSAGES * DOMAINS.length} copies, ${deferrals} deferrals, transactions by hops spanned: ` +
          `${JSON.stringify(Object.fromEntries([1, 2, 3].map((n) => [n, spans.filter((s) => s === n).length])))}, ` +
          `${Math.round(performance.now() - started)} ms`,
      );
      assert.equal(deferrals, 0, mta.log().slice(-3000));
      assert.deepEqual(readdirSync(spool), []);
    });
  });
}

suite('Exim 4', missingUnpacked('exim4'), startExim);
suite('OpenSMTPD', missing('unshare') ?? missingUnpacked('smtpd'), startOpenSmtpd);
suite('sendmail', missing('m4', 'unshare') ?? missingUnpacked('sendmail', 'sendmail-cf'), startSendmail);
