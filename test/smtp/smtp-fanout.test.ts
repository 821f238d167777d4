import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { freeTcpPort } from '../support/ports.js';
import { startProcess } from '../support/process.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type Fault, type FaultServer, type StoredMessage } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { resubmit } from '../../src/smtp/spool/resubmit.js';
import { until } from '../support/until.js';

/**
 * The SMTP front's fan-out: with a spool, one client transaction goes to every next hop its
 * recipients have, and the client hears one reply for the message. Every hop took it: 250. None:
 * that refusal (4xx if any was temporary). Some took it and some refused (the first hop commits
 * alone, so only a later hop can refuse after another took it): 250, the message held on disk for
 * the failed recipients, retried or notified to the sender (RFC 3464) through the listener itself.
 */
const DOMAINS = ['d1.test', 'd2.test', 'd3.test'] as const;
type Domain = (typeof DOMAINS)[number];
const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 };
const SENDER = 'a@client.test';

interface Rig {
  hops: FaultServer[];
  /** The sender's domain's host: where notifications arrive. */
  sender: FaultServer;
  sh: Smarthost;
  spool: string;
}

/** The listener's config: d1-d3 and the sender's domain each routed to their own host. */
interface SpoolTimes {
  retrySeconds?: number;
  maxAgeSeconds?: number;
}

function listenerConfig(hopPorts: number[], senderPort: number, spool: string, times: SpoolTimes = {}): Record<string, unknown> {
  return {
    route: { mode: 'relay', host: '127.0.0.1', port: 9 },
    transport: {
      ...Object.fromEntries(DOMAINS.map((d, i) => [d, { mode: 'relay', host: '127.0.0.1', port: hopPorts[i] }])),
      'client.test': { mode: 'relay', host: '127.0.0.1', port: senderPort },
    },
    tls: { level: 'none' },
    timeouts,
    spool: { dir: spool, ...times },
  };
}

async function withRig(faults: Partial<Record<Domain, Fault>>, run: (rig: Rig) => Promise<void>, times: SpoolTimes = {}): Promise<void> {
  const hops = await Promise.all(DOMAINS.map((d) => startFaultServer({ fault: faults[d] ?? 'none' })));
  const sender = await startFaultServer();
  const spool = mkdtempSync(join(tmpdir(), 'tb-spool-'));
  const sh = await startSmarthost(
    listenerConfig(
      hops.map((h) => h.port),
      sender.port,
      spool,
      times,
    ),
  );
  try {
    await run({ hops, sender, sh, spool });
  } finally {
    await sh.stop();
    for (const h of [...hops, sender]) await h.stop();
  }
}

/** EHLO, then one message to `rcpts`: each reply's code, and the final reply's line. */
/** 400 KiB of lines, some dot-leading. */
const BIG = Array.from({ length: 5000 }, (_, i) => `${i % 7 === 0 ? '.' : ''}line ${i} ${'x'.repeat(70)}\r\n`).join('');

async function send(port: number, rcpts: string[], id: string, from = SENDER, extra = ''): Promise<{ codes: number[]; final: string }> {
  const d = await dial(port);
  await d.cmd('EHLO client.test');
  const sent = await sendMessage(d, from, rcpts, message(id, extra));
  d.close();
  return { codes: sent.replies.map((r) => r.code), final: sent.final.raw };
}

/** What a notification says: the envelope, and its per-recipient fields (RFC 3464 2.3). */
function parseDsn(m: StoredMessage): {
  from: string;
  to: string[];
  type: string;
  recipients: Array<Record<string, string>>;
  original: string;
} {
  const text = m.body.toString('latin1');
  const type = /^Content-Type: (multipart\/report; report-type=delivery-status)/im.exec(text)?.[1] ?? '';
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1] ?? '';
  const parts = text.split(`--${boundary}`);
  const status = parts.find((p) => /^\r\nContent-Type: message\/delivery-status/i.test(p)) ?? '';
  const blocks = status.split(/\r\n\r\n/).slice(2); // the part's header, the per-message fields, then one block per recipient
  const recipients = blocks
    .filter((b) => /Final-Recipient:/i.test(b))
    .map((b) =>
      Object.fromEntries(
        b
          .trim()
          .split('\r\n')
          .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
      ),
    );
  const original = parts.find((p) => /^\r\nContent-Type: text\/rfc822-headers/i.test(p)) ?? '';
  return { from: m.mailLine.toString('latin1'), to: m.to, type, recipients, original };
}

function spoolFiles(dir: string): string[] {
  return readdirSync(dir);
}

describe('SMTP front fan-out: one transaction, three next hops, one reply', () => {
  test('every hop takes it: 250, one copy at each hop, nothing held', async () => {
    await withRig({}, async ({ hops, sh, spool }) => {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test', 'z@d3.test'], 'all-ok');
      assert.deepEqual(r.codes, [250, 250, 250, 250, 354, 250]);
      assert.deepEqual(
        hops.map((h) => h.stored.map((m) => m.body.toString('latin1'))),
        DOMAINS.map(() => [message('all-ok')]),
      );
      const tx = await sh.waitForTransactions(3);
      assert.deepEqual(
        tx.map((t) => [t.code, t.hops, t.spooled]),
        [
          [250, 3, undefined],
          [250, 3, undefined],
          [250, 3, undefined],
        ],
      );
      assert.deepEqual(spoolFiles(spool), []);
    });
  });

  test('one of three hops refuses at its end of data (5xx): 250, two copies, one notification naming that recipient and its reply', async () => {
    await withRig({ 'd2.test': 'reject-dot' }, async ({ hops, sender, sh, spool }) => {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test', 'z@d3.test'], 'one-refuses');
      assert.match(r.final, /^250 /);
      await sh.waitForEvents('smtp.spool', 2); // held, notified
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [1, 0, 1],
      );
      assert.equal(sender.stored.length, 1, 'one notification');
      const dsn = parseDsn(sender.stored[0]);
      assert.equal(dsn.from, 'MAIL FROM:<>');
      assert.deepEqual(dsn.to, [`<${SENDER}>`]);
      assert.equal(dsn.type, 'multipart/report; report-type=delivery-status');
      assert.equal(dsn.recipients.length, 1, JSON.stringify(dsn.recipients));
      assert.equal(dsn.recipients[0]['Final-Recipient'], 'rfc822; y@d2.test');
      assert.equal(dsn.recipients[0].Action, 'failed');
      assert.equal(dsn.recipients[0].Status, '5.7.1');
      assert.equal(dsn.recipients[0]['Diagnostic-Code'], 'smtp; 554 5.7.1 message refused at end of data');
      assert.match(dsn.original, /Message-Id: <one-refuses@client\.test>/);
      const spoolEvents = sh.events.filter((e) => e.event === 'smtp.spool').map((e) => e.action);
      assert.deepEqual(spoolEvents, ['held', 'notified']);
      const tx = sh.transactions().filter((t) => t.hops === 3);
      assert.deepEqual(
        tx.map((t) => [t.code, t.spooled !== undefined]),
        [
          [250, false],
          [554, true],
          [250, false],
        ],
      );
      await until(() => spoolFiles(spool).length === 0, 10_000, 'the spool entry removed once notified');
    });
  });

  test('the first hop to commit refuses: the others are aborted before their dot, the client hears the refusal, nothing held', async () => {
    await withRig({ 'd1.test': 'reject-dot' }, async ({ hops, sender, sh, spool }) => {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test', 'z@d3.test'], 'first-refuses');
      assert.match(r.final, /^554 5\.7\.1 /);
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [0, 0, 0],
      );
      // The others saw the whole body, then lost the connection: no dot, nothing stored.
      await hops[1].closedConnections(1);
      await hops[2].closedConnections(1);
      assert.ok(hops[1].dataBytes > 0 && hops[2].dataBytes > 0);
      assert.deepEqual(spoolFiles(spool), []);
      assert.equal(sender.connections, 0);
      assert.equal(sh.events.filter((e) => e.event === 'smtp.spool').length, 0);
    });
  });

  test('no hop takes it, one failure temporary: the client hears a 4xx, so it keeps the message for every recipient', async () => {
    await withRig({ 'd1.test': 'reject-dot', 'd2.test': 'tempfail-data' }, async ({ hops, sh, spool }) => {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test', 'z@d3.test'], 'none-takes-it');
      assert.match(r.final, /^451 4\.3\.0 /);
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [0, 0, 0],
      );
      assert.deepEqual(spoolFiles(spool), []);
    });
  });

  test('a hop refuses DATA after another said 354: 250, its recipient held for a retry', async () => {
    await withRig({ 'd3.test': 'tempfail-data' }, async ({ hops, sh, spool }) => {
      const r = await send(sh.port, ['x@d1.test', 'z@d3.test'], 'data-refused');
      assert.match(r.final, /^250 /);
      const [held] = await sh.waitForEvents('smtp.spool', 1);
      assert.deepEqual([held.action, held.recipients], ['held', 1]);
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [1, 0, 0],
      );
      assert.equal(spoolFiles(spool).filter((f) => f.endsWith('.json')).length, 1);
    });
  });

  test('the null sender: a refusal after another hop took it is held, but no notification is sent (RFC 5321 4.5.5)', async () => {
    await withRig({ 'd2.test': 'reject-dot' }, async ({ hops, sender, sh, spool }) => {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test'], 'null-sender', '');
      assert.match(r.final, /^250 /);
      await sh.waitForEvents('smtp.spool', 1);
      await until(() => spoolFiles(spool).length === 0, 10_000, 'the entry dropped: nothing owed');
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [1, 0, 0],
      );
      assert.equal(sender.connections, 0);
    });
  });

  test('one hop answers RCPT with 4xx: the client hears it at RCPT, the others get one copy each, nothing held', async () => {
    await withRig({ 'd2.test': 'tempfail-rcpt' }, async ({ hops, sender, sh, spool }) => {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test', 'z@d3.test'], 'rcpt-deferred');
      assert.deepEqual(r.codes, [250, 250, 450, 250, 354, 250]);
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [1, 0, 1],
      );
      assert.deepEqual(spoolFiles(spool), []);
      assert.equal(sender.connections, 0);
    });
  });

  test('a hop fails temporarily at its end of data after another took it: 250, held, retried from the spool, delivered once, no notification', async () => {
    await withRig(
      { 'd3.test': 'tempfail-dot' },
      async ({ hops, sender, sh, spool }) => {
        // Big enough to stream in many chunks, to the hops and to the spool.
        const r = await send(sh.port, ['x@d1.test', 'z@d3.test'], 'retried', SENDER, BIG);
        assert.match(r.final, /^250 /);
        await sh.waitForEvents('smtp.spool', 1);
        assert.equal(spoolFiles(spool).filter((f) => f.endsWith('.json')).length, 1, 'held on disk');
        hops[2].fault = 'none'; // the hop recovers; the next retry gets through
        const events = await sh.waitForEvents('smtp.spool', 2, 30_000);
        assert.deepEqual(
          events.map((e) => e.action),
          ['held', 'delivered'],
        );
        assert.deepEqual(
          hops.map((h) => h.stored.length),
          [1, 0, 1],
        );
        // Byte for byte from the spool: the client's dot-stuffing gone, nothing else changed.
        assert.equal(hops[2].stored[0].body.toString('latin1'), message('retried', BIG));
        await until(() => spoolFiles(spool).length === 0, 10_000, 'the spool entry removed once delivered');
        assert.equal(sender.connections, 0);
      },
      { retrySeconds: 1 },
    );
  });

  test('TLS-Required: No on MAIL survives the spool: the retry asks it again, every line says so, no hop is handed the parameter', async () => {
    await withRig(
      { 'd3.test': 'tempfail-dot' },
      async ({ hops, sh }) => {
        const d = await dial(sh.port);
        await d.cmd('EHLO client.test');
        const sent = await sendMessage(d, SENDER, ['x@d1.test', 'z@d3.test'], message('bypass'), ' X-TLS-REQUIRED=NO');
        d.close();
        assert.match(sent.final.raw, /^250 /);
        await sh.waitForEvents('smtp.spool', 1);
        hops[2].fault = 'none';
        await sh.waitForEvents('smtp.spool', 2, 30_000);
        assert.deepEqual(
          hops.map((h) => h.stored.map((m) => m.mailLine.toString('latin1'))),
          [[`MAIL FROM:<${SENDER}>`], [], [`MAIL FROM:<${SENDER}>`]],
        );
        // The client's two parts and the spool's retry through the listener.
        const lines = await sh.waitForTransactions(3);
        assert.deepEqual(
          lines.map((t) => [t.code, t.policyBypass]),
          [250, 451, 250].map((code) => [code, { why: 'tls-required-no', ignored: [] }]), // d3's part: its own 451
        );
      },
      { retrySeconds: 1 },
    );
  });

  test('a temporary failure that outlasts maxAgeSeconds: failed for good, and the sender is told with that hop’s last reply', async () => {
    await withRig(
      { 'd3.test': 'tempfail-dot' },
      async ({ hops, sender, sh, spool }) => {
        const r = await send(sh.port, ['x@d1.test', 'z@d3.test'], 'expired');
        assert.match(r.final, /^250 /);
        await until(() => sender.stored.length > 0, 30_000, 'the notification of the expired recipient');
        const dsn = parseDsn(sender.stored[0]);
        assert.deepEqual(
          dsn.recipients.map((x) => [x['Final-Recipient'], x.Action, x.Status, x['Diagnostic-Code']]),
          [['rfc822; z@d3.test', 'failed', '4.3.0', 'smtp; 451 4.3.0 try again later']],
        );
        await until(() => spoolFiles(spool).length === 0, 10_000, 'the spool emptied');
        assert.deepEqual(
          hops.map((h) => h.stored.length),
          [1, 0, 0],
        );
        const actions = sh.events.filter((e) => e.event === 'smtp.spool').map((e) => e.action);
        assert.equal(actions[0], 'held');
        assert.deepEqual(actions.slice(-2), ['failed', 'notified']);
      },
      { retrySeconds: 1, maxAgeSeconds: 1 },
    );
  });

  test('maxNextHops: a recipient for one hop more gets 452 4.5.3 and nothing reaches that hop', async () => {
    const hops = await Promise.all(DOMAINS.map(() => startFaultServer()));
    const spool = mkdtempSync(join(tmpdir(), 'tb-spool-'));
    const sh = await startSmarthost({
      ...listenerConfig(
        hops.map((h) => h.port),
        9,
        spool,
      ),
      maxNextHops: 2,
    });
    try {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test', 'z@d3.test', 'w@d1.test'], 'cap');
      assert.deepEqual(r.codes, [250, 250, 250, 452, 250, 354, 250]);
      assert.deepEqual(
        hops.map((h) => h.stored.length),
        [1, 1, 0],
      );
      assert.equal(hops[2].connections, 0);
    } finally {
      await sh.stop();
      for (const h of hops) await h.stop();
    }
  });

  test('without a spool the SMTP front keeps one next hop per transaction: 452 for a second', async () => {
    const hops = await Promise.all(DOMAINS.map(() => startFaultServer()));
    const cfg = listenerConfig(
      hops.map((h) => h.port),
      9,
      '',
    );
    delete cfg.spool;
    const sh = await startSmarthost(cfg);
    try {
      const r = await send(sh.port, ['x@d1.test', 'y@d2.test'], 'no-spool');
      assert.deepEqual(r.codes, [250, 250, 452, 354, 250]);
    } finally {
      await sh.stop();
      for (const h of hops) await h.stop();
    }
  });
});

test('a spooled REQUIRETLS message is handed on with REQUIRETLS (and its parameters), byte for byte', async () => {
  const hop = await startFaultServer({ extensions: ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'REQUIRETLS'] });
  try {
    const o = await resubmit(
      { host: '127.0.0.1', port: hop.port, heloName: 'tb.test', timeoutMs: 10_000 },
      { from: SENDER, to: 'y@d2.test', smtputf8: false, body: '8BITMIME', requireTls: true },
      [Buffer.from('Subject: x\r\n\r\n..dot\r\n', 'latin1')],
    );
    assert.equal(o.code, 250, o.reply);
    assert.equal(hop.stored[0].mailLine.toString('latin1'), `MAIL FROM:<${SENDER}> BODY=8BITMIME REQUIRETLS`);
    assert.equal(hop.stored[0].body.toString('latin1'), 'Subject: x\r\n\r\n.dot\r\n');
  } finally {
    await hop.stop();
  }
});

describe('SMTP front fan-out: the spool outlives the process', () => {
  test('kill -9 after the 250 and before the notification went out: it goes out after the restart', async () => {
    const hops = await Promise.all(DOMAINS.map((d) => startFaultServer({ fault: d === 'd2.test' ? 'reject-dot' : 'none' })));
    // The sender's host is down until after the kill: the notification cannot leave before it.
    const senderPort = await freeTcpPort();
    const dir = mkdtempSync(join(tmpdir(), 'tb-spool-kill-'));
    const spool = join(dir, 'spool');
    const config = join(dir, 'ticketbooth.yaml');
    const listener = {
      name: 'sh',
      type: 'smtp',
      listen: '127.0.0.1:0',
      hostname: 'tb.test',
      ...listenerConfig(
        hops.map((h) => h.port),
        senderPort,
        spool,
      ),
    };
    writeFileSync(config, JSON.stringify({ listeners: [listener], audit: { file: '-' } }));
    const serve = (): ReturnType<typeof startProcess> =>
      startProcess(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '-c', config], {
        ready: /sh listening on 127\.0\.0\.1:(\d+)/,
        timeoutMs: 30_000,
      });
    let sender: FaultServer | undefined;
    const first = await serve();
    try {
      const r = await send(Number(first.ready[1]), ['x@d1.test', 'y@d2.test', 'z@d3.test'], 'killed');
      assert.match(r.final, /^250 /);
      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.once('exit', resolve));
      assert.equal(spoolFiles(spool).filter((f) => f.endsWith('.json')).length, 1, 'held on disk at the 250');
      sender = await startFaultServer({ port: senderPort });
      const second = await serve();
      try {
        await until(
          () => sender!.stored.length > 0,
          30_000,
          () => `the notification after the restart; output:\n${second.output()}`,
        );
        assert.match(second.output(), /resuming 1 held message/);
        const dsn = parseDsn(sender.stored[0]);
        assert.deepEqual(
          dsn.recipients.map((x) => [x['Final-Recipient'], x['Diagnostic-Code']]),
          [['rfc822; y@d2.test', 'smtp; 554 5.7.1 message refused at end of data']],
        );
        await until(() => spoolFiles(spool).length === 0, 10_000, 'the spool emptied');
        assert.equal(sender.stored.length, 1, 'one notification');
        assert.deepEqual(
          hops.map((h) => h.stored.length),
          [1, 0, 1],
        );
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
      for (const h of [...hops, ...(sender ? [sender] : [])]) await h.stop();
    }
  });
});
