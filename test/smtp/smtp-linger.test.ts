import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import { startFaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost } from '../support/smarthost.js';
import { until } from '../support/until.js';

/**
 * An SMTP client writes its whole message before it reads the reply. When a bare LF in it gets a
 * 521 and the listener closes, the client is still writing; a listener that closed with those bytes
 * unread would have its kernel reset the connection, and the client would lose the 521 (the fuzz
 * campaign's session 8053 of seed 1 heard only "closed"). The listener must read them to the end.
 */

const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 2, dataDoneSeconds: 2 };

/** The kernel's state of the TCP connection between these ports (/proc/net/tcp, hex; 08 is CLOSE_WAIT: the peer's FIN is in). */
function tcpState(localPort: number, remotePort: number): string | undefined {
  const hex = (p: number): string => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const row of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const [, local, remote, state] = row.trim().split(/\s+/);
    if (local?.endsWith(hex(localPort)) && remote?.endsWith(hex(remotePort))) return state;
  }
  return undefined;
}

/** A raw client: `reply(code)` waits for the next reply line with that code. */
function client(port: number): {
  s: Socket;
  got: () => string;
  reply: (code: number) => Promise<void>;
  errors: string[];
  closed: Promise<unknown>;
} {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const closed = new Promise((resolve) => s.once('close', resolve));
  const errors: string[] = [];
  let text = '';
  let at = 0;
  s.setEncoding('latin1');
  s.on('data', (d: string) => (text += d));
  s.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
  const reply = (code: number): Promise<void> =>
    until(
      () => {
        const m = new RegExp(`^${code} [^\\r]*\\r\\n`, 'm').exec(text.slice(at));
        if (m) at += m.index + m[0].length;
        return m !== null;
      },
      10_000,
      () => `${code} after ${JSON.stringify(text.slice(at))}`,
    );
  return { s, got: () => text, reply, errors, closed };
}

const write = (s: Socket, bytes: string): Promise<unknown> => new Promise((resolve) => s.write(bytes, resolve));

test(
  'a client still writing its message after a bare LF got it 521 is read to its end, not reset: it then reads the 521',
  { skip: !existsSync('/proc/net/tcp') },
  async () => {
    const hop = await startFaultServer();
    const sh = await startSmarthost({ route: { mode: 'relay', host: '127.0.0.1', port: hop.port }, tls: { level: 'none' }, timeouts });
    const c = client(sh.port);
    try {
      await c.reply(220);
      for (const [cmd, code] of [
        ['EHLO client.test', 250],
        ['MAIL FROM:<a@client.test>', 250],
        ['RCPT TO:<b@dest.test>', 250],
        ['DATA', 354],
      ] as const) {
        await write(c.s, `${cmd}\r\n`);
        await c.reply(code);
      }
      c.s.pause(); // from here on the client only writes, as it would until its final dot
      await write(c.s, 'Subject: x\r\n\r\nbefore\n.\nMAIL FROM:<evil@x.test>\r\n');
      const [tx] = await sh.waitForTransactions(1);
      assert.equal(tx.code, 521);
      await until(() => tcpState(c.s.localPort!, sh.port) === '08', 10_000, 'the listener to send its FIN');
      // The rest of the message, on a connection the listener has finished with.
      for (let i = 0; i < 20; i++) {
        await write(c.s, `RCPT TO:<victim${i}@dest.test>\r\nDATA\r\nsmuggled line ${i}\r\n`);
        await setImmediate();
      }
      await write(c.s, '.\r\n');
      c.s.end();
      c.s.resume();
      await c.closed;
      assert.deepEqual(c.errors, [], 'no reset while the client wrote');
      assert.match(c.got(), /\r\n521 5\.5\.2 [^\r]*\r\n$/, 'the 521 is the last thing the client reads');
      assert.equal(hop.stored.length, 0);
      assert.ok(!hop.commands.some((x) => x.line.includes('evil@x.test') || x.line.includes('victim')), 'nothing smuggled through');
    } finally {
      c.s.destroy();
      await sh.stop();
      await hop.stop();
    }
  },
);
