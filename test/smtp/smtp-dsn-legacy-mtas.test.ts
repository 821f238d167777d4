import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { missing } from '../support/interop.js';
import { startExim, type LegacyMta } from '../support/legacy-mtas.js';
import { startLegacyClient } from '../support/postfix-chain.js';
import { freeTcpPort } from '../support/ports.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { dial } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { missingUnpacked } from '../support/unpacked-debs.js';
import { until } from '../support/until.js';

/**
 * What docs/dsn-requiretls.md tells each MTA to set for DSN, checked with the real programs: a
 * sender's RET/ENVID and NOTIFY/ORCPT go into Postfix (the README's postfix-main.cf, nothing added)
 * and into Exim (the README's exim4.conf plus `dsn_advertise_hosts`), which relay to ticketbooth
 * (with a spool, so it announces DSN), which gives them to a next hop that announces DSN. The next
 * hop's own record of the MAIL and RCPT lines it was sent is the verdict.
 */
const WITH_DSN = ['PIPELINING', '8BITMIME', 'SIZE 10240000', 'DSN'];

describe('DSN requests through a legacy MTA and ticketbooth to a next hop with DSN', { skip: missing('postfix') }, () => {
  let hop: FaultServer;
  let sh: Smarthost;
  before(async () => {
    hop = await startFaultServer({ extensions: WITH_DSN });
    sh = await startSmarthost({
      route: { mode: 'relay', host: '127.0.0.1', port: hop.port },
      tls: { level: 'none' },
      spool: { dir: mkdtempSync(join(tmpdir(), 'tb-dsn-legacy-')) },
    });
  });
  after(async () => {
    await sh?.stop();
    await hop?.stop();
  });

  /** One message into the MTA with DSN requests; the lines the next hop got for it. */
  async function relay(mta: Pick<LegacyMta, 'port' | 'log'>, name: string): Promise<{ mail: string; rcpt: string }> {
    const d = await dial(mta.port);
    try {
      const ehlo = await d.cmd('EHLO injector.test');
      assert.match(ehlo.raw, /^250[ -]DSN\r$/m, `${name} announces DSN to its client`);
      for (const [line, want] of [
        [`MAIL FROM:<sender@legacy.test> RET=HDRS ENVID=env-${name}`, 250],
        [`RCPT TO:<user@dest.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig-${name}@dest.test`, 250],
        ['DATA', 354],
      ] as const)
        assert.equal((await d.cmd(line)).code, want, `${name}: ${line}`);
      d.write(`Message-Id: <${name}@legacy.test>\r\nSubject: ${name}\r\n\r\nbody\r\n.\r\n`);
      assert.equal((await d.read(30_000)).code, 250);
      await d.cmd('QUIT');
    } finally {
      d.close();
    }
    await until(
      () => hop.stored.some((m) => m.body.includes(`<${name}@legacy.test>`)),
      30_000,
      () => `${name} relayed:\n${mta.log().slice(-2000)}`,
    );
    const lines = hop.commands.map((c) => c.line);
    return { mail: lines.find((l) => l.includes(`ENVID=env-${name}`)) ?? '', rcpt: lines.find((l) => l.includes(`orig-${name}@`)) ?? '' };
  }

  /** The lines as each MTA writes them (its own order; SIZE its count), which ticketbooth passes on as they came. */
  const WANT = {
    postfix: [
      /^MAIL FROM:<sender@legacy\.test> SIZE=\d+ ENVID=env-postfix RET=HDRS$/,
      /^RCPT TO:<user@dest\.test> ORCPT=rfc822;orig-postfix@dest\.test NOTIFY=SUCCESS,DELAY$/,
    ],
    exim: [
      /^MAIL FROM:<sender@legacy\.test> SIZE=\d+ RET=HDRS ENVID=env-exim$/,
      /^RCPT TO:<user@dest\.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig-exim@dest\.test$/,
    ],
  };
  const check = (got: { mail: string; rcpt: string }, name: keyof typeof WANT): void => {
    assert.match(got.mail, WANT[name][0]);
    assert.match(got.rcpt, WANT[name][1]);
  };

  test('Postfix (postfix-main.cf as the README shows it, nothing added): RET, ENVID, NOTIFY and ORCPT reach the hop', async () => {
    const port = await freeTcpPort();
    const mta = await startLegacyClient(port, sh.port, 1);
    try {
      check(await relay({ port, log: () => mta.log() }, 'postfix'), 'postfix');
    } finally {
      await mta.stop();
    }
  });

  test(
    'Exim: without dsn_advertise_hosts no DSN is announced; with it, RET, ENVID, NOTIFY and ORCPT reach the hop',
    { skip: missingUnpacked('exim4') },
    async () => {
      const stock = await startExim(await freeTcpPort(), sh.port);
      try {
        const d = await dial(stock.port);
        assert.doesNotMatch((await d.cmd('EHLO injector.test')).raw, /^250[ -]DSN\r$/m);
        d.close();
      } finally {
        await stock.stop();
      }
      const mta = await startExim(await freeTcpPort(), sh.port, { main: 'dsn_advertise_hosts = +relay_from_hosts\n' });
      try {
        check(await relay(mta, 'exim'), 'exim');
      } finally {
        await mta.stop();
      }
      const lines = await sh.waitForTransactions(2);
      assert.deepEqual(
        lines.map((t) => t.dsn),
        [
          { passedOn: 1, local: 0 },
          { passedOn: 1, local: 0 },
        ],
      );
    },
  );
});
