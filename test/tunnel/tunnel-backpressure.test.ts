import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { before, describe, test } from 'node:test';
import { createServer, type TLSSocket } from 'node:tls';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startTunnelService } from '../support/tunnel-service.js';

/**
 * A side that stops reading stops the other side's sending (memory per connection stays bounded),
 * and once it reads again every byte arrives, in order: the relay reuses its read buffers, so a
 * byte overwritten before it was sent would show here.
 */

const TOTAL = 128 * 1024 * 1024;
/** Byte i of a stream is i % 251: a chunk of a multiple of 251 bytes can be sent over and over. */
const PATTERN = Buffer.from(Array.from({ length: 251 * 261 }, (_, i) => i % 251));

/** Writes TOTAL pattern bytes as fast as `socket` takes them, then ends; `sent()` says how many so far. */
function sendPattern(socket: Socket): { sent: () => number } {
  let sent = 0;
  const pump = (): void => {
    while (sent < TOTAL) {
      const n = Math.min(PATTERN.length, TOTAL - sent);
      sent += n;
      if (!socket.write(n === PATTERN.length ? PATTERN : PATTERN.subarray(0, n))) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
  return { sent: () => sent };
}

/** Counts what `socket` receives and checks it is the pattern; resolves with the count at its end. */
function receivePattern(socket: Socket): Promise<number> {
  let got = 0;
  let bad = -1;
  socket.on('data', (chunk: Buffer) => {
    for (let i = 0; i < chunk.length && bad < 0; i++) if (chunk[i] !== (got + i) % 251) bad = got + i;
    got += chunk.length;
  });
  return new Promise((resolve, reject) => {
    socket.once('end', () => (bad >= 0 ? reject(new Error(`wrong byte at offset ${bad}`)) : resolve(got)));
    socket.once('error', reject);
  });
}

/** Resolves once `count()` has not grown for `quietMs` (the writer is stalled), with that count. */
async function stalled(count: () => number, quietMs = 500, maxMs = 20_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  let since = Date.now();
  for (;;) {
    const now = count();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= quietMs) return now;
    if (Date.now() > deadline) throw new Error(`still sending after ${maxMs} ms (${now} bytes)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('tunnel back-pressure', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  /** A TLS server handing each connection to `serve`; it keeps reading after the client's FIN. */
  async function upstream(serve: (s: TLSSocket) => void): Promise<{ port: number; close: () => void }> {
    const server = createServer({ cert: cert.cert, key: cert.key, allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      serve(s);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { port: (server.address() as { port: number }).port, close: () => server.close() };
  }

  test('an upstream that stops reading stops the upload; then every byte arrives in order', { timeout: 60_000 }, async () => {
    let resumeServer = (): void => undefined;
    let received: Promise<number> = Promise.resolve(0);
    const up = await upstream((s) => {
      s.pause();
      received = receivePattern(s); // a 'data' listener does not resume a paused socket
      resumeServer = () => void s.resume();
      s.once('end', () => s.end());
    });
    const tb = await startTunnelService({ upstream: { host: '127.0.0.1', port: up.port, servername: 'localhost', ca: cert.certFile } });
    try {
      const client = connect({ host: '127.0.0.1', port: tb.port });
      await once(client, 'connect');
      client.resume();
      const sender = sendPattern(client);
      const buffered = await stalled(sender.sent);
      // Socket buffers in the kernel hold a few MiB; a relay that kept reading would take it all.
      assert.ok(buffered < TOTAL / 2, `the client got ${buffered} bytes out against an upstream that reads nothing`);
      resumeServer();
      assert.equal(await received, TOTAL);
      await once(client, 'close');
    } finally {
      await tb.stop();
      up.close();
    }
  });

  test('a client that stops reading stops the download; then every byte arrives in order', { timeout: 60_000 }, async () => {
    let sender: { sent: () => number } | undefined;
    const up = await upstream((s) => {
      s.resume();
      sender = sendPattern(s);
    });
    const tb = await startTunnelService({ upstream: { host: '127.0.0.1', port: up.port, servername: 'localhost', ca: cert.certFile } });
    try {
      const client = connect({ host: '127.0.0.1', port: tb.port });
      client.pause();
      await once(client, 'connect');
      const deadline = Date.now() + 5000;
      while (!sender && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const buffered = await stalled(() => sender?.sent() ?? 0);
      assert.ok(buffered < TOTAL / 2, `the server got ${buffered} bytes out to a client that reads nothing`);
      const received = receivePattern(client);
      client.resume();
      assert.equal(await received, TOTAL);
      client.end();
      await once(client, 'close');
    } finally {
      await tb.stop();
      up.close();
    }
  });
});
