import type { OnReadOpts, Socket } from 'node:net';
import { relayLifecycle } from './forward.js';

/** The most plaintext one TLS record carries: the upstream hands its bytes over in pieces of at most this. */
const RECORD = 16 * 1024;
/**
 * The first buffer: a slice of Node's shared pool (under half its 8 KiB), not an ArrayBuffer of its
 * own. Most tunnelled exchanges are a reply of a few hundred bytes, and a 16 KiB allocation per
 * connection cost more than reading a longer reply in more pieces until the first full read, after
 * which reads go into RECORD-sized buffers.
 */
const FIRST = 2 * 1024;
/** What the upstream may send before the relay starts (a server that speaks first) is held up to this, then reading pauses. */
const HOLD = 64 * 1024;

/**
 * The upstream's plaintext, the download side of the tunnel: read into one reusable buffer
 * (`tls.connect`'s `onread`) and written to the client from there. With 'data' events, every TLS
 * record (16 KiB) was a new Buffer, cut out of a new 64 KiB ArrayBuffer shared by four of them (so
 * it cannot be freed early as forward() does), and went through the stream machinery: on a
 * download, that and the garbage collection it brings cost ticketbooth 1.6-2x stunnel's CPU per GiB.
 *
 * The buffer is reused only once the client has taken its bytes; while a write to the client is
 * unfinished, the next read goes into a new buffer. Back-pressure and the end are what
 * `server.pipe(client)` gave: reading pauses while the client holds its high-water mark, the
 * server's end ends the client, and when the client closes, finishes or fails the relay stops and
 * the server is paused (a graceful close resumes it, to read on to the server's FIN).
 */
export class UpstreamReader {
  private buffer = Buffer.allocUnsafe(FIRST);
  /** A write to the client still refers to `buffer`: the next read goes into a new one. */
  private lent = false;
  /** A read filled the small first buffer: the next one goes into a RECORD-sized one. */
  private filled = false;
  /** Bytes that came before the relay started (copies: the buffer is reused). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private client: Socket | undefined;
  /** The relay is over: what still comes (up to the server's FIN) is dropped. */
  private stopped = false;

  /** For `tls.connect()`: `buffer` is asked for before each read, `callback` gets each piece. */
  readonly onread: OnReadOpts = {
    buffer: () => {
      if (this.lent || this.filled) {
        this.buffer = Buffer.allocUnsafe(RECORD);
        this.lent = false;
        this.filled = false;
      }
      return this.buffer;
    },
    // Returning false pauses the socket; pieces already decrypted may still come, and are kept.
    callback: (n, buf) => {
      // The first buffer was too small for what comes: the next read goes into a full-size one.
      if (n === buf.length && buf.length < RECORD) this.filled = true;
      return this.take(n, buf as Buffer);
    },
  };

  /** Starts the relay to `client`: what was held first, then every piece as it comes. */
  relayTo(server: Socket, client: Socket): void {
    if (client.destroyed) return this.stop();
    this.client = client;
    for (const chunk of this.held) client.write(chunk);
    this.held = [];
    this.heldBytes = 0;
    relayLifecycle(server, client, { end: true, onStop: () => this.stop() });
    server.resume(); // if holding had paused it
  }

  /** Drops whatever comes from now on (no client to give it to). */
  stop(): void {
    this.stopped = true;
    this.client = undefined;
    this.held = [];
    this.heldBytes = 0;
  }

  private take(n: number, buf: Buffer): boolean {
    if (this.stopped) return true;
    const client = this.client;
    if (!client) {
      this.held.push(Buffer.from(buf.subarray(0, n)));
      this.heldBytes += n;
      return this.heldBytes < HOLD;
    }
    client.write(n === buf.length ? buf : buf.subarray(0, n));
    if (client.writableLength === 0) return true; // written at once: the buffer is free again
    this.lent = true;
    return client.writableLength < client.writableHighWaterMark;
  }
}
