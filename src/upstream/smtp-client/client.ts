import type { Socket } from 'node:net';
import type { AuditLog } from '../../audit/audit-log.js';
import type { DaneAudit, StsAudit } from '../../audit/events.js';
import { UpstreamError, type SmtpReplyError, type UpstreamErrorCode, type UpstreamStage } from '../../errors/index.js';
import { recordUpstreamError, type Attempt } from '../record-failure.js';
import { connectTcp } from '../tcp-connect.js';
import { dialTls, ticketsSettled, type DialContext, type UpstreamTls } from '../tls-dialer.js';
import type { TlsTarget } from '../tls-target.js';
import { ReplyReader, type SmtpReply } from './reply-reader.js';

/** The AUTH PLAIN and LOGIN responses, base64 (smtp/credentials.ts keeps the password itself out of sight). */
export interface AuthCredentials {
  plain(): string;
  user64(): string;
  password64(): string;
}

type AttemptStart = Pick<Attempt, 'destination' | 'started'>;

export interface SmtpClientOptions {
  /** The server in messages, e.g. `mx.dest.test[127.0.0.2]:25`; host:port by default. */
  label?: string;
  /** The wait for one reply. */
  replyMs: number;
  /** The wait for the reply to the end of data (RFC 5321 4.5.3.2.6: up to 10 minutes); `replyMs` by default. */
  dataDoneMs?: number;
  /** A `performance.now()` time no wait before the transaction (greeting to AUTH) goes past. */
  setupDeadline?: number;
  /** Where a failure before TLS is written as an `upstream.error` line (a `DialContext` will do). */
  report?: { audit: AuditLog; listener: string; cleartextFallback?: boolean; sts?: StsAudit; dane?: DaneAudit };
}

/**
 * The client side of one SMTP connection, for every upstream dialogue (the STARTTLS tunnel and the
 * smarthost's next hop): greeting, EHLO or HELO, STARTTLS with the response-injection check, the
 * handshake through `dialTls` (resumption cache, `tls.handshake` line), EHLO inside TLS, AUTH; then
 * commands and the message stream. Every failure is an `UpstreamError` with its stage and code;
 * one before TLS also writes the attempt's `upstream.error` line (the dialer writes its own).
 */
export class SmtpClient {
  readonly label: string;
  /** When the TCP connection was made (performance.now()): the connection cache's age limit runs from here. */
  readonly opened = performance.now();
  /**
   * Under a DANE level: the decision the connection was made under, and until when (performance.now())
   * it holds (the TLSA answer's TTL); the connection cache does not hand the connection out after that.
   */
  trust?: {
    dane?: DaneAudit;
    sts?: StsAudit;
    stsApplied?: string;
    cleartext?: 'not-offered' | 'fallback' | 'none';
    /** Found securely and authenticated (RFC 8689 4.2.1): may carry a REQUIRETLS message if it announces it. */
    requireTls?: true;
    until: number;
  };
  private ehlo = { name: '', extensions: new Map<string, string>() };
  /** The TCP connection; `socket` is the TLS one over it after STARTTLS. */
  private readonly raw: Socket;
  private socket: Socket;
  /** Made on first use: a tunnel hands the TLS connection on without reading from it. */
  private reader?: ReplyReader;
  private tls?: UpstreamTls;
  /** Set when the connection goes to the TLS handshake: later failures are not this attempt's `upstream.error`. */
  private tlsStarted = false;
  private dead = false;

  /** A TCP connection to host:port within `connectMs`, then the client on it. */
  static async connect(host: string, port: number, opts: SmtpClientOptions & { connectMs: number }): Promise<SmtpClient> {
    const attempt = { destination: `${host}:${port}`, started: performance.now() };
    let socket: Socket;
    try {
      socket = await connectTcp(host, port, opts.connectMs);
    } catch (err) {
      throw report(opts, attempt, err as UpstreamError);
    }
    return new SmtpClient(socket, opts, attempt);
  }

  constructor(
    socket: Socket,
    private readonly opts: SmtpClientOptions,
    private readonly attempt?: AttemptStart,
  ) {
    this.raw = this.socket = socket;
    this.reader = new ReplyReader(socket);
    this.label = opts.label ?? attempt?.destination ?? 'the server';
    socket.once('close', () => (this.dead = true));
  }

  /** The server's greeting; anything but 220 ends the attempt. */
  async greeting(): Promise<SmtpReply> {
    const r = await this.read('greeting', 'the greeting');
    if (r.code !== 220) throw this.refused(`${this.label} greeted with ${summary(r)}`, 'greeting', 'ERR_SMTP_GREETING', r);
    return r;
  }

  /** EHLO (again after STARTTLS); with `heloFallback`, HELO when EHLO is refused, and then no extensions. */
  async hello(name: string, { heloFallback = false } = {}): Promise<void> {
    if (this.tls) await ticketsSettled(this.tls);
    const ehlo = await this.ask(`EHLO ${name}`, 'ehlo', 'the reply to EHLO');
    if (ehlo.code === 250) {
      this.ehlo = { name: (ehlo.lines[0] ?? '').split(/\s+/)[0] ?? '', extensions: parseExtensions(ehlo) };
      return;
    }
    if (!heloFallback)
      throw this.refused(`${this.label} refused EHLO${this.tls ? ' inside TLS' : ''}: ${summary(ehlo)}`, 'ehlo', 'ERR_SMTP_PROTOCOL', ehlo);
    const helo = await this.ask(`HELO ${name}`, 'ehlo', 'the reply to HELO');
    if (helo.code !== 250) throw this.refused(`${this.label} refused HELO: ${summary(helo)}`, 'ehlo', 'ERR_SMTP_PROTOCOL', helo);
    this.ehlo = { name: '', extensions: new Map() };
  }

  /**
   * STARTTLS, which the server must offer and answer with 220, sending nothing after that 220:
   * those bytes would otherwise be read later as if TLS protected them (STARTTLS response
   * injection). Returns the connection, paused, for the handshake.
   */
  async requestTls(): Promise<Socket> {
    if (!this.extensions.has('STARTTLS')) throw this.refused(`${this.label} does not offer STARTTLS`, 'starttls', 'ERR_NO_STARTTLS');
    const ready = await this.ask('STARTTLS', 'starttls', 'the reply to STARTTLS');
    if (ready.code !== 220)
      throw this.refused(`${this.label} refused STARTTLS: ${summary(ready)}`, 'starttls', 'ERR_STARTTLS_REFUSED', ready);
    const injected = this.replies.pending;
    if (injected > 0) {
      throw this.refused(
        `${this.label} sent ${injected} bytes after its 220 to STARTTLS (response injection)`,
        'injection',
        'ERR_STARTTLS_INJECTION',
      );
    }
    this.replies.detach();
    this.tlsStarted = true;
    return this.socket;
  }

  /** `requestTls`, then the handshake, the server's EHLO name in the trust key; the dialogue goes on inside TLS. */
  async startTls(target: TlsTarget, dial: DialContext): Promise<UpstreamTls> {
    const raw = await this.requestTls();
    const tls = await dialTls({ ...target, ehloName: this.ehloName }, dial, raw);
    this.tls = tls;
    this.socket = tls.socket;
    this.reader = undefined;
    tls.socket.once('close', () => (this.dead = true));
    return tls;
  }

  /** AUTH PLAIN, else LOGIN; never outside TLS. Wrong credentials (`ERR_AUTH_FAILED`) are the operator's to fix. */
  async authenticate(credentials: AuthCredentials): Promise<void> {
    if (!this.tls) throw this.refused(`not sending credentials to ${this.label} in cleartext`, 'auth', 'ERR_AUTH_NEEDS_TLS');
    const mechanisms = (this.extensions.get('AUTH') ?? '').toUpperCase().split(/\s+/);
    // The lines carry credentials: never in a message, so every wait is "the reply to AUTH".
    const ask = (line: string): Promise<SmtpReply> => this.ask(line, 'auth', 'the reply to AUTH');
    let done: SmtpReply;
    if (mechanisms.includes('PLAIN')) {
      done = await ask(`AUTH PLAIN ${credentials.plain()}`);
    } else if (mechanisms.includes('LOGIN')) {
      for (const line of ['AUTH LOGIN', credentials.user64()]) {
        const r = await ask(line);
        if (r.code !== 334) throw this.refused(`${this.label} refused AUTH: ${summary(r)}`, 'auth', 'ERR_AUTH_FAILED', r);
      }
      done = await ask(credentials.password64());
    } else {
      throw this.refused(`${this.label} offers no AUTH PLAIN or LOGIN`, 'auth', 'ERR_AUTH_NO_MECHANISM');
    }
    if (done.code !== 235) throw this.refused(`${this.label} refused AUTH: ${summary(done)}`, 'auth', 'ERR_AUTH_FAILED', done);
  }

  /** The name the server gave in its EHLO reply (first word); part of the trust key. */
  get ehloName(): string {
    return this.ehlo.name;
  }

  /** The last EHLO reply's extensions (upper-cased keywords with their parameters); none after HELO. */
  get extensions(): ReadonlyMap<string, string> {
    return this.ehlo.extensions;
  }

  get secure(): boolean {
    return this.tls !== undefined;
  }

  /** Open, in step (nothing unread from the server), usable for another command. */
  get alive(): boolean {
    return !this.closed && (this.reader?.pending ?? 0) === 0;
  }

  get closed(): boolean {
    return this.dead || this.socket.destroyed;
  }

  /**
   * One command, one reply. A reply that was already waiting means the server is out of step
   * (two replies to one command, or an unasked 421): the connection is given up, not trusted.
   */
  async command(line: string, timeoutMs = this.opts.replyMs): Promise<SmtpReply> {
    return (await this.commands([line], [timeoutMs]))[0];
  }

  /**
   * Commands in one write when the server offers PIPELINING (RFC 2920: RSET and MAIL may share a
   * group), else one by one; their replies in order, each within its own timeout. Any failure gives
   * the connection up, as `command` does.
   */
  async commands(lines: readonly string[], timeoutsMs: readonly number[]): Promise<SmtpReply[]> {
    const what = (line: string): string => (line === '.' ? 'the reply to the end of data' : `the reply to ${verbOf(line)}`);
    try {
      if (this.closed) throw new UpstreamError(`lost the connection to ${this.label}`, 'transaction', 'ERR_SMTP_CLOSED');
      if (!this.alive) throw new UpstreamError(`${this.label} sent a reply nothing asked for`, 'transaction', 'ERR_SMTP_OUT_OF_STEP');
      const replies: SmtpReply[] = [];
      if (lines.length > 1 && this.extensions.has('PIPELINING')) {
        this.socket.write(lines.map((l) => `${l}\r\n`).join(''));
        for (const [i, line] of lines.entries()) replies.push(await this.read('transaction', what(line), timeoutsMs[i]));
      } else {
        for (const [i, line] of lines.entries()) replies.push(await this.ask(line, 'transaction', what(line), timeoutsMs[i]));
      }
      return replies;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** The final dot and the server's verdict; not sent after a reply in mid-DATA (the outcome would be unclear). */
  endData(): Promise<SmtpReply> {
    return this.command('.', this.opts.dataDoneMs ?? this.opts.replyMs);
  }

  /** Message bytes, as the client sent them (dot-stuffed); false when the caller should wait for `drained`. */
  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  /** Resolves true on 'drain', false if the connection closes or `timeoutMs` passes first. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.dead) return Promise.resolve(false);
    const socket = this.socket;
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = (): void => finish(true);
      const onClose = (): void => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  /** QUIT, then a graceful close (late TLS tickets still reach the cache). */
  async quit(): Promise<void> {
    if (this.alive) {
      this.socket.write('QUIT\r\n');
      await this.replies.read(Math.min(this.opts.replyMs, 5000)).catch(() => undefined);
    }
    await this.close();
  }

  /** Closes without QUIT: in mid-DATA this makes the server drop the message. */
  async close(): Promise<void> {
    this.dead = true;
    if (this.tls) await this.tls.close();
    else if (!this.socket.destroyed) this.socket.end();
  }

  abort(): void {
    this.dead = true;
    this.socket.destroy();
    this.raw.destroy();
  }

  private get replies(): ReplyReader {
    return (this.reader ??= new ReplyReader(this.socket));
  }

  private async ask(line: string, stage: UpstreamStage, what: string, timeoutMs?: number): Promise<SmtpReply> {
    this.socket.write(line + '\r\n');
    return this.read(stage, what, timeoutMs);
  }

  /** One reply within `timeoutMs`, else the setup's wait: `replyMs`, capped by the setup deadline. */
  private async read(stage: UpstreamStage, what: string, timeoutMs?: number): Promise<SmtpReply> {
    const deadline = this.opts.setupDeadline;
    const wait =
      timeoutMs ?? (deadline === undefined ? this.opts.replyMs : Math.max(1, Math.min(this.opts.replyMs, deadline - performance.now())));
    try {
      return await this.replies.read(wait);
    } catch (err) {
      const e = err as SmtpReplyError;
      const text =
        e.code === 'ERR_SMTP_TIMEOUT'
          ? `${this.label} timed out waiting for ${what}`
          : `lost the connection to ${this.label} waiting for ${what}: ${e.message}`;
      throw this.failed(new UpstreamError(text, stage, e.code, { cause: e }));
    }
  }

  private refused(message: string, stage: UpstreamStage, code: UpstreamErrorCode, r?: SmtpReply): UpstreamError {
    return this.failed(new UpstreamError(message, stage, code, r ? { replyCode: r.code } : {}));
  }

  private failed(err: UpstreamError): UpstreamError {
    if (this.tlsStarted || !this.attempt) return err;
    const seen = { sendingIp: this.raw.localAddress, ...(this.ehlo.name ? { ehloName: this.ehlo.name } : {}) };
    return report(this.opts, { ...this.attempt, ...seen }, err);
  }
}

function report(
  opts: SmtpClientOptions,
  attempt: AttemptStart & Pick<Attempt, 'sendingIp' | 'ehloName'>,
  err: UpstreamError,
): UpstreamError {
  const r = opts.report;
  if (r)
    recordUpstreamError(
      r.audit,
      { ...attempt, listener: r.listener, cleartextFallback: r.cleartextFallback, sts: r.sts, dane: r.dane },
      err,
    );
  return err;
}

function parseExtensions(ehlo: SmtpReply): Map<string, string> {
  const ext = new Map<string, string>();
  for (const line of ehlo.lines.slice(1)) {
    const [word, ...params] = line.trim().split(/\s+/);
    if (word) ext.set(word.toUpperCase(), params.join(' '));
  }
  return ext;
}

/** A reply for a message: its code and text, at most 200 characters. */
function summary(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(' / ')}`.slice(0, 200);
}

/** The command word alone: an address or a parameter never goes into a message. */
function verbOf(line: string): string {
  return (/^[A-Za-z]+/.exec(line)?.[0] ?? 'command').toUpperCase();
}
