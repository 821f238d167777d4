/**
 * The message part of DATA, scanned as it streams: complete lines go upstream exactly as the client
 * sent them (still dot-stuffed, so nothing is re-encoded), one partial line at most is held back.
 *
 * What is refused, and how:
 * - a bare LF or a CR not followed by LF is *fatal* (SMTP smuggling: a next hop that took `\n.\n`
 *   for the end of data would read the rest as commands); the session answers 521 and closes;
 * - a NUL, a line over the limit or a message over the size limit *spoil* the message: nothing more
 *   is forwarded, the scan goes on to the end-of-data line, and the client then gets a 5xx.
 */

export type Spoiled = 'nul' | 'line-too-long' | 'too-big';

export interface ScanResult {
  /** Bytes that may go upstream now, unchanged. */
  forward?: Buffer;
  /** The end-of-data line was seen (it is not in `forward`). */
  done: boolean;
  /** What followed the end-of-data line: the client's next commands. */
  rest?: Buffer;
  /** A bare LF or CR was seen: stop, answer 521 and close. */
  fatal?: 'bare-lf';
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

export class DataScanner {
  /** Message octets so far, as the recipient will store them (dot-stuffing removed). */
  size = 0;
  spoiled?: Spoiled;
  private partial: Buffer = Buffer.alloc(0);
  /** The partial line was too long and dropped; its end is still to come. */
  private inLongLine = false;

  constructor(
    private readonly maxLineLength: number,
    private readonly maxSize: number,
  ) {}

  push(chunk: Buffer): ScanResult {
    const buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    let pos = 0;
    let forwardEnd = 0;
    for (;;) {
      const nl = buf.indexOf(LF, pos);
      if (nl < 0) break;
      if (nl === 0 || buf[nl - 1] !== CR) return { done: false, fatal: 'bare-lf' };
      const cr = buf.indexOf(CR, pos);
      if (cr < nl - 1) return { done: false, fatal: 'bare-lf' };
      const continued = this.inLongLine;
      this.inLongLine = false;
      if (!continued && nl - pos === 2 && buf[pos] === DOT) {
        return { done: true, forward: this.slice(buf, forwardEnd), rest: buf.subarray(nl + 1) };
      }
      this.size += nl + 1 - pos - (!continued && buf[pos] === DOT ? 1 : 0);
      if (!continued) {
        const nul = buf.indexOf(0, pos);
        if (nul >= 0 && nul < nl) this.spoil('nul');
        else if (nl - 1 - pos > this.maxLineLength) this.spoil('line-too-long');
        else if (this.size > this.maxSize) this.spoil('too-big');
      }
      pos = nl + 1;
      if (!this.spoiled) forwardEnd = pos;
    }
    const forward = this.slice(buf, forwardEnd);
    const tail = buf.subarray(pos);
    if (tail.length > this.maxLineLength + 2) {
      // Keep the last byte: it may be the CR of this line's CRLF.
      this.size += tail.length - 1;
      this.spoil(this.size > this.maxSize ? 'too-big' : 'line-too-long');
      this.inLongLine = true;
      this.partial = Buffer.from(tail.subarray(tail.length - 1));
      if (tail.subarray(0, tail.length - 1).includes(CR)) return { done: false, fatal: 'bare-lf' };
    } else {
      // A copy: the chunk's memory may be reused, and the partial line is small.
      this.partial = Buffer.from(tail);
    }
    return { done: false, forward };
  }

  private slice(buf: Buffer, end: number): Buffer | undefined {
    return end > 0 ? buf.subarray(0, end) : undefined;
  }

  private spoil(why: Spoiled): void {
    this.spoiled ??= why;
  }
}
