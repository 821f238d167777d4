import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { UpstreamErrorStage } from '../audit/events.js';
import { recordUpstreamError } from '../upstream/record-failure.js';
import { parseExtensions, summary } from '../upstream/smtp-starttls.js';
import { connectTcp } from '../upstream/tcp-connect.js';
import { dialTls, type DialContext, type UpstreamTls } from '../upstream/tls-dialer.js';
import type { Credentials } from './credentials.js';
import { reply, type LocalReply } from './replies.js';
import { ReplyReader, SmtpProtocolError, type SmtpReply } from './reply-reader.js';
import { tlsRequired, tlsTargetFor, type HopIdentity, type TlsPolicy } from './tls-policy.js';

/** How long to wait for the first TLS 1.3 ticket before the EHLO inside TLS (it comes within a round trip). */
const TICKET_WAIT_MS = 50;

export interface UpstreamOptions {
  /** Our EHLO name. */
  heloName: string;
  /** Listener, cache and audit log for `dialTls`. */
  dial: DialContext;
  connectMs: number;
  replyMs: number;
  dataDoneMs: number;
  /** Bounds one host's whole setup, connect to ready for MAIL (every read before MAIL). */
  setupMs: number;
  /** Bounds a client's RCPT wait for its next hop: DNS and every host tried. */
  rcptBudgetMs: number;
}

export type UpstreamStage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'tls' | 'auth' | 'transaction';

/**
 * Why a next hop could not be used. `reply` is what the client gets (always 4xx for anything that
 * may work later); `tryNext` says whether another MX host may do better. `code` names a failure
 * found here (`ERR_NO_STARTTLS` ...); a wrapped one keeps its error as `cause` (its code is the
 * audit line's `errorCode`).
 */
export class UpstreamError extends Error {
  readonly code?: string;

  constructor(
    message: string,
    readonly stage: UpstreamStage,
    readonly reply: LocalReply,
    readonly tryNext: boolean,
    options: ErrorOptions & { code?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.code) this.code = options.code;
  }
}

/**
 * The client side of one SMTP connection to a next hop: greeting, EHLO, STARTTLS under the TLS
 * policy (through `dialTls`, so the resumption cache and the `tls.handshake` audit line apply),
 * EHLO again inside TLS, AUTH only inside TLS; then commands and the message stream.
 */
export class UpstreamSession {
  private dead = false;

  private constructor(
    private socket: Duplex,
    private reader: ReplyReader,
    private readonly tls: UpstreamTls | undefined,
    readonly extensions: Map<string, string>,
    /** e.g. `mx.dest.test[127.0.0.2]:25`, for logs and replies. */
    readonly label: string,
    private readonly opts: UpstreamOptions,
  ) {
    socket.once('close', () => (this.dead = true));
  }

  /**
   * One host under the policy; `may` retries once in cleartext after a failed STARTTLS or handshake.
   * Every attempt that fails before TLS writes an `upstream.error` line (a failed handshake: the
   * dialer's `tls.handshake`); the cleartext retry's own failure is marked `cleartextFallback`.
   * `deadline` (a `performance.now()` time) ends the host's setup, the cleartext retry included.
   */
  static async open(
    hop: HopIdentity,
    policy: TlsPolicy,
    auth: Credentials | undefined,
    opts: UpstreamOptions,
    deadline = performance.now() + opts.setupMs,
  ): Promise<UpstreamSession> {
    try {
      return await UpstreamSession.openOnce(hop, policy, auth, opts, policy.level !== 'none', false, deadline);
    } catch (err) {
      const tlsFailed = err instanceof UpstreamError && (err.stage === 'tls' || err.stage === 'starttls');
      if (!tlsFailed || policy.level !== 'may') throw err;
      return UpstreamSession.openOnce(hop, policy, auth, opts, false, true, deadline);
    }
  }

  private static async openOnce(
    hop: HopIdentity,
    policy: TlsPolicy,
    auth: Credentials | undefined,
    opts: UpstreamOptions,
    startTls: boolean,
    cleartextFallback: boolean,
    deadline: number,
  ): Promise<UpstreamSession> {
    // Each wait is its own timeout, capped by what is left of the host's setup time.
    const within = (ms: number): number => Math.max(1, Math.min(ms, deadline - performance.now()));
    const label = hop.hostName === hop.connect ? `${hop.connect}:${hop.port}` : `${hop.hostName}[${hop.connect}]:${hop.port}`;
    const attempt = { listener: opts.dial.listener, destination: `${hop.connect}:${hop.port}`, started: performance.now(), cleartextFallback };
    // Set once the handshake is attempted: from then on failures are the dialer's (or the transaction's) to report.
    let tlsAttempted = false;
    const audited = (err: UpstreamError): UpstreamError => {
      const stage = tlsAttempted ? undefined : auditStage(err);
      if (stage) recordUpstreamError(opts.dial.audit, { ...attempt, stage }, err);
      return err;
    };
    let raw: Socket;
    try {
      raw = await connectTcp(hop.connect, hop.port, within(opts.connectMs));
    } catch (err) {
      throw audited(new UpstreamError((err as Error).message, 'connect', reply(451, '4.4.1', `cannot connect to ${label}`), true, { cause: err }));
    }
    raw.setNoDelay(true); // commands are small writes, each waiting for its reply
    let reader = new ReplyReader(raw);
    let socket: Duplex = raw;
    let tls: UpstreamTls | undefined;
    const read = async (stage: UpstreamStage): Promise<SmtpReply> => {
      try {
        return await reader.read(within(opts.replyMs));
      } catch (err) {
        throw lost(err, stage, label);
      }
    };
    const ask = async (line: string, stage: UpstreamStage): Promise<SmtpReply> => {
      socket.write(line + '\r\n');
      return read(stage);
    };
    try {
      const greeting = await read('greeting');
      if (greeting.code !== 220) throw new UpstreamError(`greeting: ${summary(greeting)}`, 'greeting', reply(451, '4.4.1', `${label} greeted with ${greeting.code}`), true, { code: 'ERR_SMTP_GREETING' });
      let ehlo = await ask(`EHLO ${opts.heloName}`, 'ehlo');
      let extensions: Map<string, string>;
      if (ehlo.code === 250) {
        extensions = parseExtensions(ehlo);
      } else if (tlsRequired(policy.level) || auth) {
        throw new UpstreamError(`EHLO refused: ${summary(ehlo)}`, 'ehlo', reply(451, '4.7.4', `${label} refused EHLO; TLS is required`), true, { code: 'ERR_SMTP_PROTOCOL' });
      } else {
        const helo = await ask(`HELO ${opts.heloName}`, 'ehlo');
        if (helo.code !== 250) throw new UpstreamError(`HELO refused: ${summary(helo)}`, 'ehlo', reply(451, '4.4.1', `${label} refused HELO`), true, { code: 'ERR_SMTP_PROTOCOL' });
        extensions = new Map();
      }
      const ehloName = (ehlo.lines[0] ?? '').split(/\s+/)[0] ?? '';

      if (startTls && extensions.has('STARTTLS')) {
        const ready = await ask('STARTTLS', 'starttls');
        if (ready.code !== 220) throw new UpstreamError(`STARTTLS refused: ${summary(ready)}`, 'starttls', reply(451, '4.7.5', `${label} refused STARTTLS`), true, { code: 'ERR_STARTTLS_REFUSED' });
        // Bytes after the 220 would otherwise be read as if TLS protected them (response injection).
        if (reader.pending > 0) throw new UpstreamError(`${label} sent ${reader.pending} bytes after its 220 to STARTTLS (response injection)`, 'starttls', reply(451, '4.7.5', `${label} failed the STARTTLS injection check`), true, { code: 'ERR_STARTTLS_INJECTION' });
        reader.detach();
        const target = tlsTargetFor(policy, hop, ehloName)!;
        tlsAttempted = true;
        try {
          tls = await dialTls(target, { ...opts.dial, handshakeTimeoutMs: within(opts.connectMs) }, raw);
        } catch (err) {
          throw new UpstreamError((err as Error).message, 'tls', reply(451, '4.7.5', `TLS with ${label} failed: ${(err as Error).message}`), true);
        }
        socket = tls.socket;
        reader = new ReplyReader(socket);
        // After a full TLS 1.3 handshake the server sends its tickets first. An EHLO sent before they
        // arrive does not acknowledge them, and a server without TCP_NODELAY (Postfix) then holds its
        // EHLO reply behind Nagle until our delayed ACK, ~40 ms on Linux: wait for the ticket instead.
        if (!tls.resumed && tls.protocol === 'TLSv1.3') await tls.sessionArrived(TICKET_WAIT_MS);
        ehlo = await ask(`EHLO ${opts.heloName}`, 'ehlo');
        if (ehlo.code !== 250) throw new UpstreamError(`EHLO inside TLS refused: ${summary(ehlo)}`, 'ehlo', reply(451, '4.4.1', `${label} refused EHLO inside TLS`), true);
        extensions = parseExtensions(ehlo);
      } else if (tlsRequired(policy.level)) {
        throw new UpstreamError(`${label} does not offer STARTTLS`, 'starttls', reply(451, '4.7.4', `TLS is required, but ${label} does not offer STARTTLS`), true, { code: 'ERR_NO_STARTTLS' });
      }

      if (auth) await authenticate(auth, tls !== undefined, extensions, ask, label);
      return new UpstreamSession(socket, reader, tls, extensions, label, opts);
    } catch (err) {
      socket.destroy();
      raw.destroy();
      throw err instanceof UpstreamError ? audited(err) : err;
    }
  }

  get secure(): boolean {
    return this.tls !== undefined;
  }

  /** Open, in step (nothing unread from the server), usable for another command. */
  get alive(): boolean {
    return !this.dead && !this.socket.destroyed && this.reader.pending === 0;
  }

  /**
   * One command, one reply. A reply that was already waiting means the server is out of step
   * (two replies to one command, or an unasked 421): the connection is given up, not trusted.
   */
  async command(line: string, timeoutMs = this.opts.replyMs): Promise<SmtpReply> {
    if (!this.alive) throw this.fail(new Error('connection is closed or out of step'));
    this.socket.write(line + '\r\n');
    try {
      return await this.reader.read(timeoutMs);
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** Message bytes, as the client sent them (dot-stuffed); false when the caller should wait for `drained`. */
  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  /** Resolves true on 'drain', false if the connection closes or `timeoutMs` passes first. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.dead) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = (): void => finish(true);
      const onClose = (): void => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  get closed(): boolean {
    return this.dead || this.socket.destroyed;
  }

  /** The final dot and the server's verdict (RFC 5321 4.5.3.2.6: up to 10 minutes). */
  async endData(): Promise<SmtpReply> {
    // A reply before the dot (a mid-DATA rejection) leaves the outcome unclear: do not send it.
    if (!this.alive) throw this.fail(new Error('the next hop replied or closed before the end of data'));
    return this.command('.', this.opts.dataDoneMs);
  }

  /** QUIT, then a graceful close (late TLS tickets still reach the cache). */
  async quit(): Promise<void> {
    if (this.alive) {
      this.socket.write('QUIT\r\n');
      await this.reader.read(Math.min(this.opts.replyMs, 5000)).catch(() => undefined);
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
  }

  private fail(err: unknown): UpstreamError {
    this.abort();
    return lost(err, 'transaction', this.label);
  }
}

async function authenticate(
  auth: Credentials,
  secure: boolean,
  extensions: Map<string, string>,
  ask: (line: string, stage: UpstreamStage) => Promise<SmtpReply>,
  label: string,
): Promise<void> {
  if (!secure) throw new UpstreamError(`not sending credentials to ${label} in cleartext`, 'auth', reply(451, '4.7.0', `AUTH to ${label} needs TLS, which it did not get`), true);
  const mechanisms = (extensions.get('AUTH') ?? '').toUpperCase().split(/\s+/);
  let done: SmtpReply;
  if (mechanisms.includes('PLAIN')) {
    done = await ask(`AUTH PLAIN ${auth.plain()}`, 'auth');
  } else if (mechanisms.includes('LOGIN')) {
    const user = await ask('AUTH LOGIN', 'auth');
    if (user.code !== 334) throw authFailed(user, label);
    const pass = await ask(auth.user64(), 'auth');
    if (pass.code !== 334) throw authFailed(pass, label);
    done = await ask(auth.password64(), 'auth');
  } else {
    throw new UpstreamError(`${label} offers no AUTH PLAIN or LOGIN`, 'auth', reply(451, '4.7.0', `${label} offers no usable AUTH mechanism`), true);
  }
  if (done.code !== 235) throw authFailed(done, label);
}

/** Wrong credentials are the operator's to fix: keep the mail (Postfix's soft bounce). */
function authFailed(r: SmtpReply, label: string): UpstreamError {
  return new UpstreamError(`AUTH: ${summary(r)}`, 'auth', reply(451, '4.7.0', `AUTH to ${label} failed with ${r.code}`), false);
}

function lost(err: unknown, stage: UpstreamStage, label: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const timeout = err instanceof SmtpProtocolError && err.code === 'ERR_SMTP_TIMEOUT';
  const text = timeout ? `${label} timed out` : `lost the connection to ${label}`;
  return new UpstreamError(`${text}: ${(err as Error).message}`, stage, reply(451, '4.4.2', text), stage !== 'transaction', { cause: err });
}

/** The `upstream.error` stage of a failure before TLS; undefined for later ones (TLS, AUTH, the transaction). */
function auditStage(err: UpstreamError): UpstreamErrorStage | undefined {
  switch (err.stage) {
    case 'connect':
    case 'greeting':
    case 'ehlo':
      return err.stage;
    case 'starttls':
      return err.code === 'ERR_STARTTLS_INJECTION' ? 'injection' : 'starttls';
    default:
      return undefined;
  }
}
