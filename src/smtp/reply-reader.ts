import type { Duplex } from 'node:stream';

/** One SMTP reply: code and its lines' text (RFC 5321 4.2). */
export interface SmtpReply {
  code: number;
  lines: string[];
  /** The reply as received, CRLF-terminated, to pass through unchanged. */
  raw: string;
}

export class SmtpProtocolError extends Error {
  constructor(
    message: string,
    readonly code: 'ERR_SMTP_SYNTAX' | 'ERR_SMTP_TIMEOUT' | 'ERR_SMTP_CLOSED' | 'ERR_SMTP_TOO_LONG',
  ) {
    super(message);
  }
}

const MAX_REPLY_LINE = 4096;
const MAX_REPLY_LINES = 200;

/**
 * Reads SMTP replies from a client-side stream. Bytes past the reply being read stay buffered,
 * so a caller can tell when a server sent more than it should have (`pending`), which is how
 * STARTTLS response injection is caught.
 */
export class ReplyReader {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter?: () => void;
  private ended?: Error;
  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.waiter?.();
  };
  private readonly onEnd = (): void => {
    this.ended ??= new SmtpProtocolError('connection closed by server', 'ERR_SMTP_CLOSED');
    this.waiter?.();
  };
  private readonly onError = (err: Error): void => {
    this.ended ??= new SmtpProtocolError(`connection error: ${err.message}`, 'ERR_SMTP_CLOSED');
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
      if (!m) throw new SmtpProtocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`, 'ERR_SMTP_SYNTAX');
      const lineCode = Number(m[1]);
      if (code !== 0 && lineCode !== code) throw new SmtpProtocolError('reply code changed inside a multi-line reply', 'ERR_SMTP_SYNTAX');
      code = lineCode;
      lines.push(m[3] ?? '');
      if (m[2] !== '-') return { code, lines, raw };
      if (lines.length > MAX_REPLY_LINES) throw new SmtpProtocolError('reply has too many lines', 'ERR_SMTP_TOO_LONG');
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
      if (this.buffer.length > MAX_REPLY_LINE) throw new SmtpProtocolError('reply line too long', 'ERR_SMTP_TOO_LONG');
      if (this.ended) throw this.ended;
      const left = deadline - Date.now();
      if (left <= 0) throw new SmtpProtocolError('timed out waiting for the server', 'ERR_SMTP_TIMEOUT');
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
