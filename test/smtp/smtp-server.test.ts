import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DataScanner } from '../../src/smtp/data-stream.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

/** The cleartext side: an RFC 5321 server in front of a well-behaved next hop (relay, no TLS). */
describe('smtp listener: the client side of the conversation', () => {
  let hop: FaultServer;
  let sh: Smarthost;

  before(async () => {
    hop = await startFaultServer({ extensions: ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE 100000'], fault: 'reject-rcpt' });
    sh = await startSmarthost({
      route: { mode: 'relay', host: '127.0.0.1', port: hop.port },
      tls: { level: 'none' },
      maxMessageSize: 50_000,
      maxLineLength: 998,
      timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 2, dataDoneSeconds: 2 },
      transport: { 'other.test': { mode: 'relay', host: '127.0.0.1', port: 9, tls: { level: 'none' } } },
    });
  });
  after(async () => {
    await sh.stop();
    await hop.stop();
  });

  test('greeting, EHLO extensions, HELO, NOOP, VRFY, HELP, unknown command, QUIT', async () => {
    const d = await dial(sh.port);
    assert.match(d.greeting.raw, /^220 tb\.test ESMTP/);
    const ehlo = await d.cmd('EHLO client.test');
    assert.equal(ehlo.code, 250);
    assert.deepEqual(ehlo.lines.slice(1), [
      'PIPELINING',
      'SIZE 50000',
      'ENHANCEDSTATUSCODES',
      '8BITMIME',
      'SMTPUTF8',
      'REQUIRETLS',
      'X-TLS-REQUIRED',
    ]);
    assert.equal((await d.cmd('HELO client.test')).code, 250);
    assert.match((await d.cmd('NOOP')).raw, /^250 2\.0\.0/);
    assert.match((await d.cmd('VRFY postmaster')).raw, /^252 2\.5\.0/);
    assert.equal((await d.cmd('HELP')).code, 214);
    assert.match((await d.cmd('FROBNICATE')).raw, /^500 5\.5\.1/);
    assert.match((await d.cmd('STARTTLS')).raw, /^502 5\.5\.1/);
    assert.match((await d.cmd('QUIT')).raw, /^221 2\.0\.0/);
    await d.closed();
  });

  test('bad sequences and bad syntax get 503 / 501 / 555 / 552 / 553', async () => {
    const d = await dial(sh.port);
    assert.match((await d.cmd('MAIL FROM:<a@client.test>')).raw, /^503 5\.5\.1/, 'MAIL before EHLO');
    await d.cmd('EHLO client.test');
    assert.match((await d.cmd('RCPT TO:<b@dest.test>')).raw, /^503 5\.5\.1/, 'RCPT before MAIL');
    assert.match((await d.cmd('DATA')).raw, /^503 5\.5\.1/, 'DATA before MAIL');
    assert.match((await d.cmd('MAIL FROM:a@client.test')).raw, /^501 5\.5\.4/, 'no brackets');
    assert.match((await d.cmd('MAIL FROM:<a@@client>')).raw, /^501 5\.1\.7/, 'bad address');
    assert.match((await d.cmd('MAIL FROM:<a@client.test> FOO=1')).raw, /^555 5\.5\.4/, 'unknown parameter');
    assert.match((await d.cmd('MAIL FROM:<a@client.test> SIZE=60000')).raw, /^552 5\.3\.4/, 'SIZE over the limit');
    assert.match((await d.cmd('MAIL FROM:<jösé@client.test>')).raw, /^553 5\.6\.7/, 'UTF-8 without SMTPUTF8');
    assert.match((await d.cmd('MAIL FROM:<a@client.test>')).raw, /^250 2\.1\.0/);
    assert.match((await d.cmd('MAIL FROM:<a@client.test>')).raw, /^503 5\.5\.1/, 'nested MAIL');
    assert.match((await d.cmd('RCPT TO:<b@dest.test> NOTIFY=NEVER')).raw, /^555 5\.5\.4/, 'DSN not offered');
    assert.match((await d.cmd('RCPT TO:<postmaster>')).raw, /^550 5\.1\.1/);
    assert.match((await d.cmd('RCPT TO:<reject@dest.test>')).raw, /^550 5\.1\.1 User unknown/, 'the next hop said it');
    assert.match((await d.cmd('DATA')).raw, /^554 5\.5\.1/, 'no valid recipients');
    assert.match((await d.cmd('RSET')).raw, /^250 2\.0\.0/);
    d.close();
  });

  test('pipelined commands get their replies in order, and the message goes through once', async () => {
    const before = hop.stored.length;
    const d = await dial(sh.port);
    d.write('EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.test>\r\nRCPT TO:<c@dest.test>\r\nDATA\r\n');
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await d.read()).code);
    assert.deepEqual(codes, [250, 250, 250, 250, 354]);
    d.write(message('pipelined') + '.\r\nQUIT\r\n');
    const final = await d.read();
    assert.match(final.raw, /^250 2\.0\.0 Ok: queued as Q\d+/);
    assert.equal((await d.read()).code, 221);
    await d.closed();
    assert.equal(hop.stored.length, before + 1);
    assert.deepEqual(hop.stored.at(-1)!.to, ['<b@dest.test>', '<c@dest.test>']);
  });

  test('a pipelined group is answered in one write once its last command is read (RFC 2920), not a segment per reply', async () => {
    const socket = connect({ host: '127.0.0.1', port: sh.port });
    try {
      const chunks: string[] = [];
      let wake = (): void => undefined;
      socket.on('data', (c: Buffer) => {
        chunks.push(c.toString('latin1'));
        wake();
      });
      const codes = (): string[] => [...chunks.join('').matchAll(/^(\d{3}) /gm)].map((m) => m[1]);
      const replies = (n: number): Promise<void> =>
        new Promise((resolve) => {
          wake = () => codes().length >= n && resolve();
          wake();
        });
      await replies(1);
      chunks.length = 0;
      socket.write('EHLO client.test\r\nNOOP\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.test>\r\nNOOP\r\nRSET\r\n');
      await replies(6);
      assert.deepEqual(codes(), ['250', '250', '250', '250', '250', '250']);
      assert.equal(chunks.length, 1, `the replies came in ${chunks.length} reads`);
    } finally {
      socket.destroy();
    }
  });

  test('dot-stuffing passes through: the stored message is byte for byte the one sent', async () => {
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    const body = 'Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmiddle . dot\r\n\r\n';
    const r = await sendMessage(d, 'a@client.test', ['b@dest.test'], body);
    assert.equal(r.final.code, 250);
    assert.equal(hop.stored.at(-1)!.body.toString(), body);
    d.close();
  });

  test('commands with bare LF, NUL or over 2048 octets get 500 5.5.2 and the session goes on', async () => {
    const d = await dial(sh.port);
    d.write('EHLO client.test\n');
    assert.match((await d.read()).raw, /^500 5\.5\.2 bare <LF>/);
    d.write('NOOP\0\r\n');
    assert.match((await d.read()).raw, /^500 5\.5\.2 NUL/);
    d.write('NOOP ' + 'x'.repeat(5000) + '\r\n');
    assert.match((await d.read()).raw, /^500 5\.5\.2 line too long/);
    assert.equal((await d.cmd('NOOP')).code, 250);
    d.close();
  });

  test('garbage: after 10 errors the client is told 421 and dropped; the next hop is never contacted', async () => {
    const connections = hop.connections;
    const d = await dial(sh.port);
    d.write(Array.from({ length: 12 }, (_, i) => `\x01\x02garbage ${i}\r\n`).join(''));
    const replies = [];
    for (let i = 0; i < 11; i++) replies.push((await d.read()).code);
    assert.deepEqual(replies, [...Array<number>(10).fill(500), 421]);
    await d.closed();
    assert.equal(hop.connections, connections);
  });

  test('an HTTP request gets 421 and the connection closes', async () => {
    const d = await dial(sh.port);
    d.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match((await d.read()).raw, /^421 4\.7\.0/);
    await d.closed();
  });

  test('bare LF inside DATA: 521, the connection closes, the next hop gets no final dot and stores nothing', async () => {
    const before = hop.stored.length;
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    await d.cmd('MAIL FROM:<a@client.test>');
    assert.equal((await d.cmd('RCPT TO:<b@dest.test>')).code, 250);
    assert.equal((await d.cmd('DATA')).code, 354);
    // The SMTP smuggling shape: a bare-LF "end of data" followed by a second envelope.
    d.write('Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@dest.test>\r\nDATA\r\nspoofed\r\n.\r\n');
    assert.match((await d.read()).raw, /^521 5\.5\.2/);
    await d.closed();
    const [tx] = (await sh.waitForTransactions(1)).filter((t) => t.code === 521);
    assert.ok(tx, 'the transaction was logged with 521');
    assert.equal(hop.stored.length, before);
    assert.ok(!hop.commands.some((c) => c.line.includes('evil@x.test')), 'nothing smuggled through');
  });

  test('NUL or an overlong line in a message: 554 5.6.0, nothing stored, the session goes on', async () => {
    const before = hop.stored.length;
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    const nul = await sendMessage(d, 'a@client.test', ['b@dest.test'], 'Subject: nul\r\n\r\na\0b\r\n');
    assert.match(nul.final.raw, /^554 5\.6\.0/);
    const long = await sendMessage(d, 'a@client.test', ['b@dest.test'], `Subject: long\r\n\r\n${'y'.repeat(1200)}\r\n`);
    assert.match(long.final.raw, /^554 5\.6\.0/);
    assert.equal(hop.stored.length, before);
    const ok = await sendMessage(d, 'a@client.test', ['b@dest.test'], message('after-spoiled'));
    assert.equal(ok.final.code, 250);
    assert.equal(hop.stored.length, before + 1);
    d.close();
  });

  test('a message over the size limit without SIZE: 552 5.3.4 after the dot, nothing stored', async () => {
    const before = hop.stored.length;
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    const big = await sendMessage(d, 'a@client.test', ['b@dest.test'], 'Subject: big\r\n\r\n' + `${'z'.repeat(900)}\r\n`.repeat(70));
    assert.match(big.final.raw, /^552 5\.3\.4/);
    assert.equal(hop.stored.length, before);
    d.close();
  });

  test('a recipient with another next hop gets 452 4.5.3 and goes in the next transaction', async () => {
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    await d.cmd('MAIL FROM:<a@client.test>');
    assert.equal((await d.cmd('RCPT TO:<b@dest.test>')).code, 250);
    assert.match((await d.cmd('RCPT TO:<x@other.test>')).raw, /^452 4\.5\.3/);
    assert.equal((await d.cmd('RSET')).code, 250);
    d.close();
  });

  test('two transactions in one client session share one upstream connection', async () => {
    const connections = hop.connections;
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    assert.equal((await sendMessage(d, 'a@client.test', ['b@dest.test'], message('reuse-1'))).final.code, 250);
    assert.equal((await sendMessage(d, 'a@client.test', ['b@dest.test'], message('reuse-2'))).final.code, 250);
    await d.cmd('QUIT');
    await d.closed();
    // At most one new one: an earlier test's connection may have been waiting in the connection cache.
    assert.ok(hop.connections - connections <= 1, `${hop.connections - connections} new upstream connections`);
    assert.ok(sh.transactions().at(-1)!.reused, 'the second transaction rode a cached connection');
  });

  test('the message streams: the next hop has most of it before the client sent the end', async () => {
    const before = hop.dataBytes;
    const d = await dial(sh.port);
    await d.cmd('EHLO client.test');
    await d.cmd('MAIL FROM:<a@client.test>');
    await d.cmd('RCPT TO:<b@dest.test>');
    assert.equal((await d.cmd('DATA')).code, 354);
    d.write('Subject: stream\r\n\r\n' + `${'s'.repeat(98)}\r\n`.repeat(400)); // 40 kB, under the 50 kB limit
    const deadline = Date.now() + 5000;
    while (hop.dataBytes - before < 30_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(hop.dataBytes - before >= 30_000, 'the next hop received the message before its end-of-data');
    d.write('.\r\n');
    assert.equal((await d.read()).code, 250);
    d.close();
  });
});

describe('smtp listener: admission, limits and stop', () => {
  test('a client outside the allow list gets 554 and nothing else; the refusal is audited', async () => {
    const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: 9 }, allow: ['10.0.0.0/8'] });
    try {
      const d = await dial(sh.port).catch((err: Error) => err);
      assert.ok(!(d instanceof Error));
      assert.match(d.greeting.raw, /^554 5\.7\.1/);
      await d.closed();
      assert.ok(sh.events.some((e) => e.event === 'client.refused' && e.reason === 'allow-list'));
    } finally {
      await sh.stop();
    }
  });

  test('over the connection limit: 421; idle clients time out with 421 4.4.2; stopping tells idle clients 421 4.3.2', async () => {
    const sh = await startSmarthost({
      route: { mode: 'relay', host: '127.0.0.1', port: 9 },
      maxConnections: 1,
      // The first client must still be connected (idle, not yet timed out) when the second is refused.
      timeouts: { idleSeconds: 2, dataSeconds: 1, connectSeconds: 1, replySeconds: 1, dataDoneSeconds: 1 },
    });
    try {
      const first = await dial(sh.port);
      const second = await dial(sh.port);
      assert.match(second.greeting.raw, /^421 4\.7\.0/);
      assert.match((await first.read(5000)).raw, /^421 4\.4\.2/, 'idle timeout');
      await first.closed();
    } finally {
      await sh.stop();
    }
    const sh2 = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: 9 } });
    const idle = await dial(sh2.port);
    const stopped = sh2.stop();
    assert.match((await idle.read(5000)).raw, /^421 4\.3\.2/);
    await idle.closed();
    await stopped;
  });
});

describe('DataScanner', () => {
  test('finds the end across chunk borders and forwards complete lines only', () => {
    const s = new DataScanner(998, 1e6);
    const a = s.push(Buffer.from('line one\r\n..two\r\nthr'));
    assert.equal(a.forward?.toString(), 'line one\r\n..two\r\n');
    const b = s.push(Buffer.from('ee\r\n.'));
    assert.equal(b.forward?.toString(), 'three\r\n');
    const c = s.push(Buffer.from('\r\nQUIT\r\n'));
    assert.equal(c.done, true);
    assert.equal(c.rest?.toString(), 'QUIT\r\n');
    assert.equal(s.size, 'line one\r\n.two\r\nthree\r\n'.length);
  });

  test('a bare CR is fatal like a bare LF', () => {
    assert.equal(new DataScanner(998, 1e6).push(Buffer.from('a\rb\r\n')).fatal, 'bare-lf');
    assert.equal(new DataScanner(998, 1e6).push(Buffer.from('a\r\n.\n')).fatal, 'bare-lf');
  });

  test('an overlong line split over chunks spoils the message but the end is still found', () => {
    const s = new DataScanner(100, 1e6);
    s.push(Buffer.from('ok\r\n' + 'x'.repeat(150)));
    s.push(Buffer.from('x'.repeat(150)));
    const r = s.push(Buffer.from('\r\n.\r\n'));
    assert.equal(s.spoiled, 'line-too-long');
    assert.equal(r.done, true);
  });
});
