import type { Duplex } from 'node:stream';
import { SmtpClosedError, SmtpSyntaxError, SmtpTimeoutError, SmtpTooLongError } from '../../errors/index.js';

/** One SMTP reply: code and its lines' text (RFC 5321 4.2). */
export interface SmtpReply {
  code: number;
  lines: string[];
  /** The reply as received, CRLF-terminated, to pass through unchanged. */
  raw: string;
}

const MAX_REPLY_LINE = 4096;
const MAX_REPLY_LINES = 200;

/**
 * Reads SMTP replies from a client-side stream. Bytes past the reply being read stay buffered,
 * so a caller can tell when a server sent more than it should have (`pending`), which is how
 * STARTTLS response injection is caught. A failed read throws one of the `SmtpReplyError`s.
 */
export class ReplyReader {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter?: () => void;
  /** Why the stream ended; the error is built only if a read comes after (most ends follow QUIT). */
  private ended?: string;
  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.waiter?.();
  };
  private readonly onEnd = (): void => {
    this.ended ??= 'connection closed by server';
    this.waiter?.();
  };
  private readonly onError = (err: Error): void => {
    this.ended ??= `connection error: ${err.message}`;
    this.waiter?.();
  };

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  /** Bytes received and not yet consumed as a reply. */
  get pending(): number {
    return this.buffer.length;
  }

  async read(timeoutMs: number): Promise<SmtpReply> {
    const lines: string[] = [];
    let raw = '';
    let code = 0;
    for (;;) {
      const line = await this.readLine(timeoutMs);
      raw += line + '\r\n';
      const m = /^(\d{3})([ -])(.*)$/.exec(line) ?? /^(\d{3})()$/.exec(line);
      if (!m) throw new SmtpSyntaxError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
      const lineCode = Number(m[1]);
      if (code !== 0 && lineCode !== code) throw new SmtpSyntaxError('reply code changed inside a multi-line reply');
      code = lineCode;
      lines.push(m[3] ?? '');
      if (m[2] !== '-') return { code, lines, raw };
      if (lines.length > MAX_REPLY_LINES) throw new SmtpTooLongError('reply has too many lines');
    }
  }

  /** Stops reading; returns whatever was buffered past the last reply. */
  detach(): Buffer {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    this.stream.pause();
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }

  private async readLine(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.buffer.indexOf(0x0a);
      if (nl >= 0) {
        const end = nl > 0 && this.buffer[nl - 1] === 0x0d ? nl - 1 : nl;
        const line = this.buffer.subarray(0, end).toString('utf8');
        this.buffer = this.buffer.subarray(nl + 1);
        return line;
      }
      if (this.buffer.length > MAX_REPLY_LINE) throw new SmtpTooLongError('reply line too long');
      if (this.ended !== undefined) throw new SmtpClosedError(this.ended);
      const left = deadline - Date.now();
      if (left <= 0) throw new SmtpTimeoutError('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, left);
        function finish(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiter = finish;
      });
      this.waiter = undefined;
    }
  }
}
