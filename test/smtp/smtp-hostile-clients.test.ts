import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost } from '../support/smarthost.js';

/**
 * Clients that abuse the smarthost: one that pipelines and never reads (back-pressure), invalid
 * UTF-8 in an envelope (refused, never rewritten), many connections from one address (a per-client
 * limit), a DATA trickle (an overall deadline) and clients that reset before being served.
 */

const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 1, replySeconds: 2, dataDoneSeconds: 2 };
const relayTo = (port: number) => ({ route: { mode: 'relay', host: '127.0.0.1', port }, tls: { level: 'none' }, timeouts });

function open(port: number, host = '127.0.0.1', localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with the socket's first line (its greeting or its refusal). */
function firstLine(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const on = (b: Buffer): void => {
      got += b.toString('latin1');
      if (got.includes('\r\n')) {
        s.off('data', on);
        resolve(got.slice(0, got.indexOf('\r\n')));
      }
    };
    s.on('data', on);
    s.once('close', () => resolve(got));
  });
}

describe('smtp listener: a client that pipelines and never reads', () => {
  test('stops being read once its unread replies pass a bound; when it reads, every reply arrives, in order', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost(relayTo(hop.port));
    const s = await open(sh.port);
    try {
      s.pause(); // never reads
      const chunk = Buffer.from('NOOP\r\n'.repeat(64 * 1024)); // 384 KiB, 65,536 commands
      let sent = 0;
      let stalled = false;
      // Without back-pressure every write drains (the server keeps reading and queues the replies):
      // 64 MiB would pass. With it, the kernel buffers fill and a write stops draining.
      while (sent < 64 * 1024 * 1024 && !stalled) {
        sent += chunk.length;
        if (!s.write(chunk)) {
          stalled = !(await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(false), 2000);
            s.once('drain', () => {
              clearTimeout(t);
              resolve(true);
            });
          }));
        }
      }
      assert.ok(stalled, `the server read all ${sent} bytes without the client reading a reply`);
      assert.ok(sent < 32 * 1024 * 1024, `stalled only after ${sent} bytes`);
      // Now read: the greeting, then exactly one 250 per NOOP, nothing lost or reordered.
      const commands = sent / 6;
      s.end('QUIT\r\n');
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (text += d));
      s.resume();
      await new Promise((resolve) => s.once('close', resolve));
      const lines = text.split('\r\n').filter((l) => l !== '');
      assert.match(lines[0], /^220 /);
      assert.equal(lines.length, 1 + commands + 1);
      assert.ok(lines.slice(1, -1).every((l) => l === '250 2.0.0 Ok'));
      assert.match(lines.at(-1)!, /^221 /);
    } finally {
      s.destroy();
      await sh.stop();
      await hop.stop();
    }
  });
});

describe('smtp listener: envelopes leave as they came, or not at all', () => {
  test('invalid UTF-8 in MAIL or RCPT under SMTPUTF8 gets 553 5.6.7 and never reaches the next hop; valid UTF-8 arrives byte for byte', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost(relayTo(hop.port));
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      d.write(Buffer.concat([Buffer.from('MAIL FROM:<'), Buffer.from([0xff, 0xfe]), Buffer.from('@client.test> SMTPUTF8\r\n')]));
      assert.match((await d.read()).raw, /^553 5\.6\.7 /);
      assert.equal((await d.cmd('MAIL FROM:<ü@client.test> SMTPUTF8')).code, 250);
      d.write(Buffer.concat([Buffer.from('RCPT TO:<b'), Buffer.from([0xc3, 0x28]), Buffer.from('@dest.test>\r\n')]));
      assert.match((await d.read()).raw, /^553 5\.6\.7 /);
      assert.equal((await d.cmd('RCPT TO:<bø@dest.test>')).code, 250);
      assert.equal((await d.cmd('DATA')).code, 354);
      d.write('Subject: x\r\n\r\nbody\r\n.\r\n');
      assert.equal((await d.read()).code, 250);
      await d.cmd('QUIT');
      assert.equal(hop.stored.length, 1);
      assert.equal(hop.stored[0].from, '<ü@client.test> SMTPUTF8');
      assert.deepEqual(hop.stored[0].to, ['<bø@dest.test>']);
      assert.ok(!hop.commands.some((c) => c.line.includes('\ufffd')), 'no replacement character ever went upstream');
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});

describe('listeners: connections per client address', () => {
  test('200 slow clients from one address take at most half the slots (the default); another address still gets in', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost({ ...relayTo(hop.port), allow: ['127.0.0.0/8'] }); // maxConnections 100, per client 50
    const held: Socket[] = [];
    try {
      const lines: string[] = [];
      for (let i = 0; i < 200; i++) {
        const s = await open(sh.port, '127.0.0.1', '127.0.0.1'); // connects, then says nothing
        held.push(s);
        lines.push(await firstLine(s));
      }
      assert.equal(lines.filter((l) => l.startsWith('220 ')).length, 50);
      assert.equal(
        lines.filter((l) => l === '421 4.7.0 tb.test ticketbooth: too many connections from your address, try again later').length,
        150,
      );
      const other = await open(sh.port, '127.0.0.1', '127.0.0.2');
      held.push(other);
      assert.match(await firstLine(other), /^220 /, 'another address is not kept out');
      const reasons = sh.events.flatMap((e) => (e.event === 'client.refused' ? [e.reason] : []));
      assert.deepEqual(new Set(reasons), new Set(['client-limit']));
      // A slot freed is a slot again.
      const first = held[0];
      first.destroy();
      await new Promise((r) => first.once('close', r));
      let again: string;
      do {
        const s = await open(sh.port, '127.0.0.1', '127.0.0.1');
        held.push(s);
        again = await firstLine(s);
      } while (!again.startsWith('220')); // the close may not have reached the listener yet
    } finally {
      for (const s of held) s.destroy();
      await sh.stop();
      await hop.stop();
    }
  });

  test('defaults to half of maxConnections (Postfix: 50 of 100)', async () => {
    const { smtpListenerSchema } = await import('../../src/config/smtp-schema.js');
    const { admission } = await import('../../src/net/admission.js');
    const { AuditLog } = await import('../../src/audit/audit-log.js');
    const l = smtpListenerSchema.parse({ name: 's', type: 'smtp', listen: '1', route: { mode: 'mx' } });
    assert.equal(admission(l, new AuditLog()).maxConnectionsPerClient, 50);
  });
});

describe('smtp listener: DATA has an overall deadline', () => {
  test('a client trickling its message slower than minDataRate gets 421 4.4.2 although every chunk is in time; nothing is delivered', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost({ ...relayTo(hop.port), timeouts: { ...timeouts, dataSeconds: 1, minDataRate: 100 } });
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      await d.cmd('MAIL FROM:<a@client.test>');
      await d.cmd('RCPT TO:<b@dest.test>');
      assert.equal((await d.cmd('DATA')).code, 354);
      // 10 bytes every 200 ms: 50 bytes/s, each gap well inside dataSeconds (1 s).
      const started = Date.now();
      const trickle = setInterval(() => d.write('0123456789'), 200);
      const r = await d.read(10_000).finally(() => clearInterval(trickle));
      assert.match(r.raw, /^421 4\.4\.2 /);
      const took = Date.now() - started;
      assert.ok(took < 5000, `the deadline held (${took} ms)`);
      await d.closed();
      assert.equal(hop.stored.length, 0);
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });

  test('a large message at a good rate is not cut by the deadline', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost({ ...relayTo(hop.port), timeouts: { ...timeouts, dataSeconds: 1, minDataRate: 100 } });
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      const sent = await sendMessage(d, 'a@client.test', ['b@dest.test'], message('big') + 'x'.repeat(900).concat('\r\n').repeat(2000));
      assert.equal(sent.final.code, 250);
      d.close();
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});

describe('listeners: clients gone before they are served', () => {
  test('300 connect-and-reset clients: no audit line names an undefined address or calls them refused', async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost(relayTo(hop.port));
    try {
      await Promise.all(
        Array.from({ length: 300 }, async () => {
          const s = await open(sh.port);
          s.resetAndDestroy();
        }),
      );
      // Then a real client: once it is served, every reset before it has been handled.
      const d = await dial(sh.port);
      await d.cmd('QUIT');
      const bad = sh.events.filter((e) => JSON.stringify(e).includes('undefined') || e.event === 'client.refused');
      assert.deepEqual(bad, []);
    } finally {
      await sh.stop();
      await hop.stop();
    }
  });
});
