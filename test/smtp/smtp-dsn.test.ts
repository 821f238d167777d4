import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { dial, message } from '../support/smtp-client.js';
import { startFaultServer, type Fault, type FaultServer, type StoredMessage } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { until } from '../support/until.js';

/**
 * DSN (RFC 3461) on the SMTP front with a spool: RET/ENVID/NOTIFY/ORCPT go byte for byte to a next
 * hop that announces DSN; for one that does not, ticketbooth sends the "relayed" notification
 * NOTIFY=SUCCESS asks for (RFC 3461 6.2), held in the spool before the client's 250, and nothing
 * of its own for NOTIFY=NEVER. Without a spool DSN is not announced and its parameters are refused.
 */
const SENDER = 'a@client.test';
const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 };
const WITH_DSN = ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE 10240000', 'DSN'];

interface Rig {
  hops: FaultServer[];
  sender: FaultServer;
  sh: Smarthost;
  spool: string;
}

async function withRig(hopOpts: Array<{ dsn: boolean; fault?: Fault }>, run: (rig: Rig) => Promise<void>, spooled = true): Promise<void> {
  const hops = await Promise.all(
    hopOpts.map((o) => startFaultServer({ fault: o.fault ?? 'none', ...(o.dsn ? { extensions: WITH_DSN } : {}) })),
  );
  const sender = await startFaultServer();
  const spool = mkdtempSync(join(tmpdir(), 'tb-dsn-'));
  const sh = await startSmarthost(
    {
      route: { mode: 'relay', host: '127.0.0.1', port: 9 },
      transport: {
        ...Object.fromEntries(hops.map((h, i) => [`d${i + 1}.test`, { mode: 'relay', host: '127.0.0.1', port: h.port }])),
        'client.test': { mode: 'relay', host: '127.0.0.1', port: sender.port },
      },
      tls: { level: 'none' },
      timeouts,
      ...(spooled ? { spool: { dir: spool } } : {}),
    },
    { admin: { listen: '127.0.0.1:0' } },
  );
  try {
    await run({ hops, sender, sh, spool });
  } finally {
    await sh.stop();
    for (const h of [...hops, sender]) await h.stop();
  }
}

/** One transaction with the MAIL and RCPT lines as given: every reply's code and the last reply's line. */
async function transact(
  port: number,
  mail: string,
  rcpts: string[],
  id: string,
): Promise<{ ehlo: string[]; codes: number[]; last: string }> {
  const d = await dial(port);
  try {
    const ehlo = (await d.cmd('EHLO client.test')).lines;
    const codes: number[] = [];
    let last = '';
    for (const line of [mail, ...rcpts, 'DATA']) {
      const r = await d.cmd(line);
      codes.push(r.code);
      last = r.raw;
      if (line === 'DATA' && r.code !== 354) return { ehlo, codes, last };
    }
    d.write(message(id).replace(/^\./gm, '..') + '.\r\n');
    const final = await d.read(30_000);
    codes.push(final.code);
    return { ehlo, codes, last: final.raw };
  } finally {
    d.close();
  }
}

/** `ticketbooth_smtp_dsn_total` by `handled`, from the admin endpoint. */
async function dsnMetric(sh: Smarthost): Promise<Record<'passed-on' | 'local', number | undefined>> {
  const text = await (await fetch(`http://127.0.0.1:${sh.service.admin!.address().port}/metrics`)).text();
  const count = (handled: string): number | undefined => {
    const m = new RegExp(`^ticketbooth_smtp_dsn_total\\{[^}]*handled="${handled}"[^}]*\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return { 'passed-on': count('passed-on'), local: count('local') };
}

/** A notification's per-message and per-recipient fields (RFC 3464 2.2, 2.3). */
function parseReport(m: StoredMessage): { mail: string; perMessage: Record<string, string>; recipients: Array<Record<string, string>> } {
  const text = m.body.toString('latin1');
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1] ?? '';
  const status = text.split(`--${boundary}`).find((p) => /^\r\nContent-Type: message\/delivery-status/i.test(p)) ?? '';
  const fields = (b: string): Record<string, string> =>
    Object.fromEntries(
      b
        .trim()
        .split('\r\n')
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
    );
  const blocks = status.split(/\r\n\r\n/).slice(1);
  return {
    mail: m.mailLine.toString('latin1'),
    perMessage: fields(blocks[0] ?? ''),
    recipients: blocks.filter((b) => /Final-Recipient:/i.test(b)).map(fields),
  };
}

describe('DSN (RFC 3461) on the SMTP front with a spool', () => {
  test('a next hop that announces DSN gets RET, ENVID, NOTIFY and ORCPT byte for byte; no notice of ticketbooth own', async () => {
    await withRig([{ dsn: true }], async ({ hops, sender, sh, spool }) => {
      const mail = `MAIL FROM:<${SENDER}> RET=HDRS ENVID=QQ314159+2Bid`;
      const rcpts = [
        'RCPT TO:<x@d1.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+2Btag@d1.test',
        'RCPT TO:<y@d1.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;y@d1.test',
      ];
      const r = await transact(sh.port, mail, rcpts, 'dsn-pass');
      assert.ok(r.ehlo.includes('DSN'), r.ehlo.join(','));
      assert.deepEqual(r.codes, [250, 250, 250, 354, 250]);
      assert.equal(hops[0].stored.length, 1);
      const m = hops[0].stored[0];
      assert.equal(m.mailLine.toString('latin1'), mail);
      assert.deepEqual(
        m.rcptLines.map((l) => l.toString('latin1')),
        rcpts,
      );
      const [tx] = await sh.waitForTransactions(1);
      assert.deepEqual(tx.dsn, { passedOn: 2, local: 0 });
      assert.deepEqual(await dsnMetric(sh), { 'passed-on': 2, local: undefined });
      assert.deepEqual(readdirSync(spool), []);
      assert.equal(sender.connections, 0);
    });
  });

  test('a next hop without DSN: NOTIFY=SUCCESS gets one "relayed" notice per recipient, NOTIFY=NEVER none; nothing extra upstream', async () => {
    await withRig([{ dsn: false }], async ({ hops, sender, sh, spool }) => {
      const rcpts = [
        'RCPT TO:<x@d1.test> NOTIFY=SUCCESS ORCPT=rfc822;x+2Btag@d1.test',
        'RCPT TO:<y@d1.test> NOTIFY=SUCCESS,FAILURE',
        'RCPT TO:<z@d1.test> NOTIFY=NEVER',
      ];
      const r = await transact(sh.port, `MAIL FROM:<${SENDER}> RET=HDRS ENVID=env+2B1`, rcpts, 'dsn-relayed');
      assert.deepEqual(r.codes, [250, 250, 250, 250, 354, 250]);
      const m = hops[0].stored[0];
      assert.equal(m.mailLine.toString('latin1'), `MAIL FROM:<${SENDER}>`);
      assert.deepEqual(
        m.rcptLines.map((l) => l.toString('latin1')),
        ['RCPT TO:<x@d1.test>', 'RCPT TO:<y@d1.test>', 'RCPT TO:<z@d1.test>'],
      );
      await sh.waitForEvents('smtp.spool', 2); // held, notified
      await until(() => readdirSync(spool).length === 0, 10_000, 'the spool entry removed once notified');
      assert.equal(sender.stored.length, 1, 'one notification');
      const report = parseReport(sender.stored[0]);
      assert.equal(report.mail, 'MAIL FROM:<>');
      assert.equal(report.perMessage['Original-Envelope-Id'], 'env+1');
      assert.deepEqual(
        report.recipients.map((b) => [b['Original-Recipient'], b['Final-Recipient'], b.Action, b.Status]),
        [
          ['rfc822;x+tag@d1.test', 'rfc822; x@d1.test', 'relayed', '2.0.0'],
          [undefined, 'rfc822; y@d1.test', 'relayed', '2.0.0'],
        ],
      );
      const [tx] = await sh.waitForTransactions(1);
      assert.deepEqual(tx.dsn, { passedOn: 0, local: 2 });
      assert.deepEqual(await dsnMetric(sh), { 'passed-on': undefined, local: 2 });

      // Only NOTIFY=NEVER, or the null sender: nothing owed, nothing held, the 250 at once.
      const never = await transact(sh.port, `MAIL FROM:<${SENDER}>`, ['RCPT TO:<z@d1.test> NOTIFY=NEVER'], 'dsn-never');
      const nullSender = await transact(sh.port, 'MAIL FROM:<>', ['RCPT TO:<x@d1.test> NOTIFY=SUCCESS'], 'dsn-null');
      assert.deepEqual(
        [never.codes, nullSender.codes],
        [
          [250, 250, 354, 250],
          [250, 250, 354, 250],
        ],
      );
      assert.deepEqual(readdirSync(spool), []);
      assert.equal(hops[0].stored.length, 3);
      assert.equal(sender.stored.length, 1, 'still the one notification');
    });
  });

  test('NOTIFY=NEVER holds for the spool failure notices too; NOTIFY=FAILURE gets one with ORCPT and ENVID', async () => {
    await withRig(
      [{ dsn: false }, { dsn: false, fault: 'reject-dot' }, { dsn: false, fault: 'reject-dot' }],
      async ({ sender, sh, spool }) => {
        const rcpts = [
          'RCPT TO:<x@d1.test>',
          'RCPT TO:<y@d2.test> NOTIFY=NEVER',
          'RCPT TO:<w@d3.test> NOTIFY=FAILURE ORCPT=rfc822;w@d3.test',
        ];
        const r = await transact(sh.port, `MAIL FROM:<${SENDER}> ENVID=fail1`, rcpts, 'dsn-fail');
        assert.match(r.last, /^250 /);
        await sh.waitForEvents('smtp.spool', 2);
        await until(() => readdirSync(spool).length === 0, 10_000, 'the spool entry removed once notified');
        assert.equal(sender.stored.length, 1);
        const report = parseReport(sender.stored[0]);
        assert.equal(report.perMessage['Original-Envelope-Id'], 'fail1');
        assert.deepEqual(
          report.recipients.map((b) => [b['Original-Recipient'], b['Final-Recipient'], b.Action]),
          [['rfc822;w@d3.test', 'rfc822; w@d3.test', 'failed']],
        );
      },
    );
  });

  test('bad DSN parameters are 501 5.5.4', async () => {
    await withRig([{ dsn: true }], async ({ sh }) => {
      const d = await dial(sh.port);
      try {
        await d.cmd('EHLO client.test');
        for (const bad of ['RET=BOTH', 'ENVID=a+zz', `ENVID=${'x'.repeat(101)}`]) {
          assert.match((await d.cmd(`MAIL FROM:<${SENDER}> ${bad}`)).raw, /^501 5\.5\.4 /, bad);
        }
        assert.equal((await d.cmd(`MAIL FROM:<${SENDER}>`)).code, 250);
        for (const bad of ['NOTIFY=NEVER,SUCCESS', 'NOTIFY=SOMETIMES', 'ORCPT=x@d1.test', 'ORCPT=rfc822;a+2', 'ORCPT=rfc822;é@d1.test']) {
          assert.match((await d.cmd(`RCPT TO:<x@d1.test> ${bad}`)).raw, /^501 5\.5\.4 /, bad);
        }
        assert.match((await d.cmd('RCPT TO:<x@d1.test> FOO=1')).raw, /^555 5\.5\.4 /);
      } finally {
        d.close();
      }
      // After HELO nothing is announced: a DSN parameter is one never offered.
      const h = await dial(sh.port);
      try {
        await h.cmd('HELO client.test');
        assert.equal((await h.cmd(`MAIL FROM:<${SENDER}>`)).code, 250);
        assert.match((await h.cmd('RCPT TO:<x@d1.test> NOTIFY=SUCCESS')).raw, /^555 5\.5\.4 /);
      } finally {
        h.close();
      }
    });
  });

  test('without a spool DSN is not announced and its parameters are refused (555)', async () => {
    await withRig(
      [{ dsn: true }],
      async ({ sh }) => {
        const d = await dial(sh.port);
        try {
          const ehlo = await d.cmd('EHLO client.test');
          assert.ok(!ehlo.lines.includes('DSN'), ehlo.lines.join(','));
          assert.match((await d.cmd(`MAIL FROM:<${SENDER}> RET=HDRS`)).raw, /^555 5\.5\.4 /);
          assert.equal((await d.cmd(`MAIL FROM:<${SENDER}>`)).code, 250);
          assert.match((await d.cmd('RCPT TO:<x@d1.test> NOTIFY=SUCCESS')).raw, /^555 5\.5\.4 /);
        } finally {
          d.close();
        }
      },
      false,
    );
  });
});
