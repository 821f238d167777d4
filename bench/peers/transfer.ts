/**
 * One bulk transfer over a route, checked byte for byte against what the server says it sent or
 * got; resolves with its duration, from connect to close.
 * - `node-down`: `SEND n` to the Node bench server, n bytes back;
 * - `node-up`: `RECV n` and n bytes, the server answers `OK`;
 * - `www-down`: `GET /blob.txt` from `s_server -WWW`, a header and n bytes back;
 * - `sink-up`: n bytes to the `s_server` sink, then end; its file must have grown by n.
 */
import type { Socket } from 'node:net';
import type { Route } from './routes.js';
import type { Sink } from './servers.js';

export type Job = { kind: 'node-down' | 'node-up' | 'www-down'; size: number } | { kind: 'sink-up'; size: number; sink: Sink };

const CHUNK = Buffer.alloc(256 * 1024, 0x62);

export function transfer(route: Route, job: Job): Promise<number> {
  const started = performance.now();
  const { socket, ready } = route.open();
  if (job.kind === 'sink-up') job.sink.reset();
  return new Promise((resolve, reject) => {
    const head: Buffer[] = [];
    let headBytes = 0;
    let got = 0;
    socket.on('data', (c: Buffer) => {
      got += c.length;
      if (headBytes < 256) {
        head.push(c);
        headBytes += c.length;
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const seconds = (performance.now() - started) / 1000;
      const problem = check(job, got, Buffer.concat(head).toString('latin1'));
      if (problem) reject(new Error(`${route.name} ${job.kind}: ${problem}`));
      else resolve(seconds);
    });
    socket.once(ready, () => {
      if (job.kind === 'node-down') socket.write(`SEND ${job.size}\n`);
      else if (job.kind === 'www-down') socket.write('GET /blob.txt HTTP/1.0\r\n\r\n');
      else {
        if (job.kind === 'node-up') socket.write(`RECV ${job.size}\n`);
        pump(socket, job.size, job.kind === 'sink-up');
      }
    });
  });
}

/** Writes `size` bytes (honouring backpressure), then half-closes when `end`. */
function pump(socket: Socket, size: number, end: boolean): void {
  let left = size;
  const more = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        socket.once('drain', more);
        return;
      }
    }
    if (end) socket.end();
  };
  more();
}

/** What is wrong with the bytes seen, if anything. */
function check(job: Job, got: number, head: string): string | undefined {
  switch (job.kind) {
    case 'node-down':
      return got === job.size ? undefined : `got ${got} of ${job.size} bytes`;
    case 'node-up':
      return head === 'OK\n' ? undefined : `server answered ${JSON.stringify(head.slice(0, 40))} (want OK)`;
    case 'www-down': {
      const end = head.indexOf('\r\n\r\n');
      if (!head.startsWith('HTTP/1.0 200') || end < 0) return `no 200 header: ${JSON.stringify(head.slice(0, 60))}`;
      return got - (end + 4) === job.size ? undefined : `got ${got - (end + 4)} of ${job.size} body bytes`;
    }
    case 'sink-up': {
      const n = job.sink.received();
      return n === job.size ? undefined : `server wrote ${n} of ${job.size} bytes`;
    }
  }
}
