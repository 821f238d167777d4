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
 * Pull-style reading of the client's side of an SMTP session. Bytes past the current command stay
 * buffered (pipelining, RFC 2920); the socket is paused while more than 64 KiB wait, so a client
 * can never make ticketbooth hold more than that plus one read.
 */
export class ClientInput {
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;
  private waiter?: () => void;
  /** Discarding an overlong line up to its LF. */
  private skipping = false;

  /** `beforeWait`: called whenever reading has to wait for the client (the replies go out then). */
  constructor(
    private readonly socket: Socket,
    private readonly beforeWait: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
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

  /** Drops whatever is buffered (after a fatal protocol error). */
  discard(): void {
    this.buffer = Buffer.alloc(0);
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
