import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';

/** One command line from the client, or why there is none. */
export type CommandLine =
  /** `badUtf8`: the bytes are not valid UTF-8, so `text` (with U+FFFD) is not what the client sent. */
  | { kind: 'line'; text: string; badUtf8?: true }
  /** Ended in a bare LF, or held a CR not followed by LF: RFC 5321 2.3.8 forbids both. */
  | { kind: 'bad-eol' }
  | { kind: 'nul' }
  /** Longer than the limit; everything up to its LF was discarded. */
  | { kind: 'too-long' }
  | { kind: 'timeout' }
  | { kind: 'closed' }
  /** The listener is stopping and no complete line was waiting. */
  | { kind: 'aborted' };

export type Chunk = Buffer | 'timeout' | 'closed';

const HIGH_WATER = 64 * 1024;

/**
 * Once the session has said its last and sent its FIN, the client is still read (and what it sends
 * dropped) until it closes too, stays quiet LINGER_QUIET_MS, or LINGER_MAX_MS have passed. Closing
 * with its bytes unread makes the kernel send a reset, and a reset can cost the client the reply it
 * has not read yet: a client still writing its message when a bare LF got it 521 would see only the
 * reset (the "TCP reset problem" of RFC 9112 9.6; Apache and nginx linger the same way).
 */
const LINGER_QUIET_MS = 2000;
const LINGER_MAX_MS = 10_000;

/**
 * Pull-style reading of the client's side of an SMTP session. Bytes past the current command stay
 * buffered (pipelining, RFC 2920); the socket is paused while more than 64 KiB wait, so a client
 * can never make ticketbooth hold more than that plus one read.
 */
export class ClientInput {
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Nothing more is kept: the session reads no more commands (a fatal error, or it is over). */
  private dropping = false;
  /** Chunks received: how a lingering wait tells the client's bytes from silence. */
  private chunks = 0;
  private waiter?: () => void;
  /** Discarding an overlong line up to its LF. */
  private skipping = false;

  /** `beforeWait`: called whenever reading has to wait for the client (the replies go out then). */
  constructor(
    private readonly socket: Socket,
    private readonly beforeWait: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks++;
      if (this.dropping) return this.wake();
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      if (this.buffer.length > HIGH_WATER) socket.pause();
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Puts bytes back in front (what followed the end of a message). */
  unshift(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.buffer = this.buffer.length ? Buffer.concat([bytes, this.buffer]) : bytes;
  }

  /** Drops whatever is buffered and whatever comes after (a fatal protocol error: no more commands). */
  discard(): void {
    this.dropping = true;
    this.buffer = Buffer.alloc(0);
    if (this.socket.isPaused()) this.socket.resume();
  }

  /** After the last reply and the FIN: reads and drops until the client closes, goes quiet or the bound (see LINGER_QUIET_MS). */
  async linger(abort: AbortSignal): Promise<void> {
    this.discard();
    const deadline = Date.now() + LINGER_MAX_MS;
    for (;;) {
      if (this.ended || this.socket.destroyed || abort.aborted) return;
      const heard = this.chunks;
      await this.wait(Math.max(0, Math.min(LINGER_QUIET_MS, deadline - Date.now())), abort);
      if (this.chunks === heard || Date.now() >= deadline) return;
    }
  }

  async readLine(maxLength: number, timeoutMs: number, abort?: AbortSignal): Promise<CommandLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.buffer.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.take(nl + 1);
        if (this.skipping) {
          this.skipping = false;
          return { kind: 'too-long' };
        }
        return classify(line, maxLength);
      }
      if (this.buffer.length > maxLength + 2) {
        this.skipping = true;
        this.take(this.buffer.length);
      }
      if (this.ended) return { kind: 'closed' };
      if (abort?.aborted && this.buffer.length === 0 && !this.skipping) return { kind: 'aborted' };
      const left = deadline - Date.now();
      if (left <= 0) return { kind: 'timeout' };
      await this.wait(left, abort);
    }
  }

  /** Everything buffered, or the next bytes to arrive. */
  async readChunk(timeoutMs: number): Promise<Chunk> {
    if (this.buffer.length === 0) {
      if (this.ended) return 'closed';
      await this.wait(timeoutMs);
      if (this.buffer.length === 0) return this.ended ? 'closed' : 'timeout';
    }
    return this.take(this.buffer.length);
  }

  private take(n: number): Buffer {
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    if (this.buffer.length <= HIGH_WATER && this.socket.isPaused()) this.socket.resume();
    return out;
  }

  private wait(ms: number, abort?: AbortSignal): Promise<void> {
    this.beforeWait();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        abort?.removeEventListener('abort', done);
        this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      abort?.addEventListener('abort', done);
      this.waiter = done;
    });
  }

  private wake(): void {
    this.waiter?.();
  }
}

function classify(line: Buffer, maxLength: number): CommandLine {
  const n = line.length;
  if (n < 2 || line[n - 2] !== 0x0d) return { kind: 'bad-eol' };
  const body = line.subarray(0, n - 2);
  if (body.includes(0x0d)) return { kind: 'bad-eol' };
  if (body.includes(0x00)) return { kind: 'nul' };
  if (body.length > maxLength) return { kind: 'too-long' };
  return isUtf8(body) ? { kind: 'line', text: body.toString('utf8') } : { kind: 'line', text: body.toString('utf8'), badUtf8: true };
}
