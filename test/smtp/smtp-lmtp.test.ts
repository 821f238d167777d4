import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { missing } from '../support/interop.js';
import { freeTcpPort } from '../support/ports.js';
import { startExim } from '../support/legacy-mtas.js';
import { startPostfix } from '../support/postfix.js';
import { readmePostfixLines, sendThroughLegacy } from '../support/postfix-chain.js';
import { dial, message, sendMessage, type SmtpDialogue } from '../support/smtp-client.js';
import { startFaultServer, type Fault, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { missingUnpacked } from '../support/unpacked-debs.js';
import { until } from '../support/until.js';

/**
 * The LMTP front (RFC 2033): one client transaction goes to every next hop its recipients have,
 * and after the data each accepted recipient gets its own hop's verdict, in RCPT order. What each
 * hop stored is the verdict on ticketbooth: the message once per hop that said 250, byte for byte,
 * and nothing where the client was told otherwise.
 */
const DOMAINS = ['d1.test', 'd2.test', 'd3.test'] as const;
const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 };

/** Three next hops, one per domain (a transport entry each); `faults` by domain. */
async function withHops(
  faults: Partial<Record<(typeof DOMAINS)[number], Fault>>,
  run: (hops: FaultServer[], sh: Smarthost) => Promise<void>,
  listener: Record<string, unknown> = {},
): Promise<void> {
  const hops = await Promise.all(DOMAINS.map((d) => startFaultServer({ fault: faults[d] ?? 'none' })));
  const sh = await startSmarthost({
    protocol: 'lmtp',
    route: { mode: 'relay', host: '127.0.0.1', port: 9 },
    transport: Object.fromEntries(DOMAINS.map((d, i) => [d, { mode: 'relay', host: '127.0.0.1', port: hops[i].port }])),
    tls: { level: 'none' },
    timeouts,
    ...listener,
  });
  try {
    await run(hops, sh);
  } finally {
    await sh.stop();
    for (const h of hops) await h.stop();
  }
}

/** LHLO, MAIL, each RCPT (its reply), DATA and the message, then one reply per accepted recipient. */
async function lmtpMessage(d: SmtpDialogue, rcpts: string[], body: string): Promise<{ rcpt: number[]; data: number; after: string[] }> {
  await d.cmd('LHLO client.test');
  assert.equal((await d.cmd('MAIL FROM:<a@client.test>')).code, 250);
  const rcpt: number[] = [];
  for (const r of rcpts) rcpt.push((await d.cmd(`RCPT TO:<${r}>`)).code);
  const data = (await d.cmd('DATA')).code;
  if (data !== 354) return { rcpt, data, after: [] };
  d.write(body + '.\r\n');
  const after: string[] = [];
  for (let i = 0; i < rcpt.filter((c) => c === 250).length; i++) after.push((await d.read()).raw);
  return { rcpt, data, after };
}

describe('LMTP front: one transaction to many next hops, one verdict per recipient', () => {
  test('three domains, three hops: three 250s after the data, each hop stored the message once, byte for byte', async () => {
    await withHops({}, async (hops, sh) => {
      const d = await dial(sh.port);
      assert.match(d.greeting.raw, /^220 .* LMTP /);
      const body = message('fan-3');
      const r = await lmtpMessage(
        d,
        DOMAINS.map((dom) => `u@${dom}`),
        body,
      );
      assert.deepEqual([r.rcpt, r.data], [[250, 250, 250], 354]);
      assert.deepEqual(
        r.after.map((l) => l.slice(0, 3)),
        ['250', '250', '250'],
      );
      for (const [i, h] of hops.entries()) {
        assert.equal(h.stored.length, 1, `hop ${i}`);
        // As stored: the dot-stuffing the client added is gone, nothing else changed.
        assert.equal(h.stored[0].body.toString('latin1'), body.replace('\r\n.leading', '\r\nleading'));
        assert.deepEqual(h.stored[0].to, [`<u@${DOMAINS[i]}>`]);
      }
      const tx = await sh.waitForTransactions(3);
      assert.deepEqual(
        tx.map((t) => [t.code, t.recipients, t.hops]),
        [
          [250, 1, 3],
          [250, 1, 3],
          [250, 1, 3],
        ],
      );
      d.close();
    });
  });

  test('one hop refuses the message at its end of data: only its recipient hears 554, in RCPT order', async () => {
    await withHops({ 'd2.test': 'reject-dot' }, async (hops, sh) => {
      const d = await dial(sh.port);
      const r = await lmtpMessage(d, ['x@d1.test', 'y@d2.test', 'z@d3.test', 'w@d1.test'], message('one-refuses'));
      assert.deepEqual(
        r.after.map((l) => l.slice(0, 3)),
        ['250', '554', '250', '250'],
      );
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [1, 0, 1],
      );
      assert.deepEqual(hops[0].stored[0].to, ['<x@d1.test>', '<w@d1.test>'], 'two recipients of one hop: one copy');
      // The session goes on: the next transaction is served.
      assert.equal((await d.cmd('RSET')).code, 250);
      d.close();
    });
  });

  test('a recipient refused at RCPT gets no reply after the data; a hop refusing DATA answers for its recipients after it', async () => {
    await withHops({ 'd2.test': 'reject-rcpt', 'd3.test': 'tempfail-data' }, async (hops, sh) => {
      const d = await dial(sh.port);
      const r = await lmtpMessage(d, ['a@d1.test', 'reject@d2.test', 'c@d3.test'], message('mixed'));
      assert.deepEqual([r.rcpt, r.data], [[250, 550, 250], 354]);
      assert.deepEqual(
        r.after.map((l) => l.slice(0, 3)),
        ['250', '451'],
      );
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [1, 0, 0],
      );
      d.close();
    });
  });

  test('maxNextHops: a recipient for one hop more gets 452 4.5.3 and nothing reaches that hop', async () => {
    await withHops(
      {},
      async (hops, sh) => {
        const d = await dial(sh.port);
        const r = await lmtpMessage(d, ['a@d1.test', 'b@d2.test', 'c@d3.test', 'd@d1.test'], message('cap'));
        assert.deepEqual(r.rcpt, [250, 250, 452, 250]);
        assert.equal(r.after.length, 3);
        assert.equal(hops[2].connections, 0);
        d.close();
      },
      { maxNextHops: 2 },
    );
  });

  test('LHLO only: EHLO and HELO are refused on an LMTP listener, LHLO on an SMTP one; DATA without a recipient is 503', async () => {
    await withHops({}, async (_hops, sh) => {
      const d = await dial(sh.port);
      assert.equal((await d.cmd('EHLO client.test')).code, 500);
      assert.equal((await d.cmd('HELO client.test')).code, 500);
      assert.match((await d.cmd('LHLO client.test')).raw, /^250-.*\r\n(250-.*\r\n)*250 /);
      assert.equal((await d.cmd('MAIL FROM:<a@client.test>')).code, 250);
      assert.equal((await d.cmd('DATA')).code, 503);
      d.close();
    });
    const smtp = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: 9 }, tls: { level: 'none' }, timeouts });
    try {
      const d = await dial(smtp.port);
      assert.equal((await d.cmd('LHLO client.test')).code, 500);
      d.close();
    } finally {
      await smtp.stop();
    }
  });
});

const MESSAGES = 10;

/**
 * A legacy MTA handing its mail to the LMTP front, which has one next hop per domain: MESSAGES
 * messages, each for the three domains, go in through `send`; then each hop must have stored each
 * once, each transaction gone to three hops, and the MTA's own log must show no deferral.
 */
function mtaSuite(
  name: string,
  skip: string | undefined,
  start: (tbPort: number) => Promise<{ send: (id: string, to: string[]) => Promise<void>; log: () => string; stop: () => Promise<void> }>,
  deferred: RegExp,
): void {
  describe(`${name} → ticketbooth LMTP front → three next hops`, { skip }, () => {
    let mta: Awaited<ReturnType<typeof start>>;
    let hops: FaultServer[];
    let sh: Smarthost;
    before(async () => {
      hops = await Promise.all(DOMAINS.map(() => startFaultServer()));
      sh = await startSmarthost({
        protocol: 'lmtp',
        route: { mode: 'relay', host: '127.0.0.1', port: 9 },
        transport: Object.fromEntries(DOMAINS.map((d, i) => [d, { mode: 'relay', host: '127.0.0.1', port: hops[i].port }])),
        tls: { level: 'none' },
        timeouts,
      });
      mta = await start(sh.port);
    });
    after(async () => {
      await mta?.stop();
      await sh?.stop();
      for (const h of hops ?? []) await h.stop();
    });

    test(`${MESSAGES} messages × 3 domains: every copy once, each in one transaction to three hops, no deferral`, async () => {
      const ids = Array.from({ length: MESSAGES }, (_, i) => `${name.toLowerCase()}-lmtp-${i}-${process.pid}`);
      for (const id of ids)
        await mta.send(
          id,
          DOMAINS.map((d) => `user@${d}`),
        );
      const idsAt = (h: FaultServer): string[] =>
        h.stored.map((m) => /^Message-Id: <([^@>]+)@/im.exec(m.body.toString('latin1'))?.[1] ?? '?').sort();
      await until(
        () => hops.every((h) => h.stored.length >= ids.length),
        60_000,
        () => `every copy at every hop\n${mta.log().slice(-2000)}`,
      );
      for (const h of hops) assert.deepEqual(idsAt(h), [...ids].sort(), 'each message once at each hop');
      assert.equal((mta.log().match(new RegExp(deferred.source, 'gm')) ?? []).length, 0, mta.log().slice(-2000));
      const tx = await sh.waitForTransactions(ids.length * DOMAINS.length);
      assert.ok(
        tx.every((t) => t.hops === DOMAINS.length && t.code === 250),
        JSON.stringify(tx.map((t) => [t.hops, t.code])),
      );
    });
  });
}

mtaSuite(
  'Postfix',
  missing('postfix', 'swaks'),
  async (tbPort) => {
    const port = await freeTcpPort();
    const postfix = await startPostfix({
      smtpd: `127.0.0.1:${port}`,
      main: { myhostname: 'legacy.client.test', ...readmePostfixLines(tbPort, 'postfix-lmtp-main.cf') },
    });
    return { send: (id, to) => sendThroughLegacy(port, id, to.join(',')), log: () => postfix.log(), stop: () => postfix.stop() };
  },
  /status=deferred/,
);

mtaSuite(
  'Exim',
  missing('postfix') ?? missingUnpacked('exim4'),
  async (tbPort) => {
    const exim = await startExim(await freeTcpPort(), tbPort, { lmtp: true });
    const send = async (id: string, to: string[]): Promise<void> => {
      const d = await dial(exim.port);
      await d.cmd('EHLO injector.test');
      const sent = await sendMessage(
        d,
        'sender@legacy.test',
        to,
        `Message-Id: <${id}@legacy.test>\r\nSubject: ${id}\r\n\r\nbody of ${id}\r\n`,
      );
      assert.equal(sent.final.code, 250, JSON.stringify(sent.replies));
      d.close();
    };
    return { send, log: () => exim.log(), stop: () => exim.stop() };
  },
  // Exim's mainlog marks a deferral with `==`.
  /^\S+ \S+ \S+ == /,
);
