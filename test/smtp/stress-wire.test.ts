import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { smtpListener } from '../../stress/config.js';
import { startSink } from '../../stress/sink.js';
import { startTicketbooth, type Ticketbooth } from '../../stress/ticketbooth.js';
import { Wire, type Heard } from '../../stress/wire.js';
import { makeCert } from '../support/certs.js';
import type { FaultServer } from '../support/smtp-fault-server.js';

/**
 * The campaign's client against a real ticketbooth (a child process) that answers a bare LF in
 * DATA with 521 and closes while the client is still writing the message, as in fuzz session 8053
 * of seed 1. The client stalls, event loop included, until its kernel holds ticketbooth's FIN (the
 * scheduler or a GC pausing a burst), then writes on: the 521 must still be what it reads.
 */

const CLOSE_WAIT = '08';

/** The kernel's state of the TCP connection between these ports, from /proc/net/tcp (hex, 08 is CLOSE_WAIT). */
function tcpState(localPort: number, remotePort: number): string | undefined {
  const hex = (p: number): string => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const row of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const [, local, remote, state] = row.trim().split(/\s+/);
    if (local?.endsWith(hex(localPort)) && remote?.endsWith(hex(remotePort))) return state;
  }
  return undefined;
}

/** Blocks the whole thread (no event loop: nothing is read) until the server's FIN is in the kernel. */
function stallUntilFin(w: Wire, serverPort: number): void {
  const deadline = Date.now() + 30_000;
  while (tcpState(w.socket.localPort!, serverPort) !== CLOSE_WAIT) {
    if (Date.now() > deadline) throw new Error(`no FIN from ticketbooth: state ${tcpState(w.socket.localPort!, serverPort)}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

const text = (h: Heard): string => (typeof h === 'string' ? h : h.raw);

let sink: FaultServer;
let tb: Ticketbooth;

before(async () => {
  sink = await startSink(makeCert(['localhost', '127.0.0.1']));
  tb = await startTicketbooth({ listeners: [smtpListener('fuzz', sink.port)] });
});

after(async () => {
  await tb?.stop();
  await sink?.stop();
});

test(
  'a 521 sent while the client was still writing DATA is read, and nothing is relayed',
  { skip: !existsSync('/proc/net/tcp') },
  async () => {
    const port = tb.port('fuzz');
    const w = await Wire.open(port, '127.0.0.1');
    try {
      assert.match(text(await w.read()), /^220 /);
      assert.match(text(await w.cmd('EHLO client.test')), /^250 /m);
      assert.match(text(await w.cmd('MAIL FROM:<s@client.test>')), /^250 /);
      assert.match(text(await w.cmd('RCPT TO:<r@dest.test>')), /^250 /);
      assert.match(text(await w.cmd('DATA')), /^354 /);
      await w.write('Subject: smuggling\r\n\r\nbefore\n.\nMAIL FROM:<smuggler@evil.test>\r\n');
      stallUntilFin(w, port);
      // The rest of the burst, on a connection ticketbooth has closed: a reset, then EPIPE.
      for (const line of ['RCPT TO:<victim@dest.test>\r\n', 'DATA\r\n', 'smuggled\r\n', '.\r\n']) await w.write(line);
      assert.match(text(await w.read()), /^521 5\.5\.2 /);
      assert.ok(await w.waitClosed(30_000), 'ticketbooth closes after the 521');
    } finally {
      w.close();
    }
    assert.equal(sink.stored.length, 0, 'neither the message nor the smuggled one reached the next hop');
  },
);
