import type { Socket } from 'node:net';
import type { AuditLog } from '../audit/audit-log.js';
import type { SmtpTransactionEvent } from '../audit/events.js';
import { ClientInput, type CommandLine } from './client-input.js';
import { DataScanner } from './data-stream.js';
import { forLog, parseEnvelopeArg, type EnvelopeArg } from './envelope.js';
import { format, isLocal, reply, type LocalReply, type Reply } from './replies.js';
import type { SmtpReply } from './reply-reader.js';
import type { Route, Router } from './routing.js';
import { UpstreamError, UpstreamSession, type UpstreamOptions } from './upstream-session.js';

export interface SmtpSessionOptions {
  listener: string;
  hostname: string;
  maxMessageSize: number;
  maxLineLength: number;
  maxRecipients: number;
  idleMs: number;
  dataMs: number;
  /** DATA must keep up this many bytes/s on average beyond `dataMs` (0: no overall deadline). */
  minDataRate: number;
  logAddresses: 'none' | 'domain' | 'full';
  audit: AuditLog;
  router: Router;
  upstream: UpstreamOptions;
  /** Aborted when the listener stops: idle clients get 421 at their next wait. */
  draining: AbortSignal;
}

/** RFC 5321 leaves room for extension parameters; Postfix's limit. */
const MAX_COMMAND = 2048;
/**
 * Replies the client has not read yet, beyond which no further command is read: a client that
 * pipelines and never reads then costs this much, not a reply per command sent.
 */
const REPLY_HIGH_WATER = 16 * 1024;
/** After this many errors the client is told 421 and dropped (Postfix's smtpd_hard_error_limit is 20). */
const MAX_ERRORS = 10;
const NON_SMTP = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT)$/;

interface Transaction {
  started: number;
  from: EnvelopeArg;
  size?: number;
  body?: '7BIT' | '8BITMIME';
  smtputf8: boolean;
  /** Fixed by the first RCPT: every recipient of the transaction goes there. */
  hop?: { key: string; route: Route; domain: string };
  /** Why the hop cannot be used; every recipient for it gets this. */
  hopFailure?: Reply;
  /** Holds this transaction's MAIL FROM. */
  upstream?: UpstreamSession;
  recipients: string[];
  lastCode: number;
  messageSize: number;
  error?: string;
}

/** Serves one client of an SMTP listener until QUIT, a fatal error, a timeout or the listener stopping. */
export function serveSmtp(socket: Socket, opts: SmtpSessionOptions): Promise<void> {
  return new SmtpServerSession(socket, opts).run();
}

/**
 * The cleartext side: an RFC 5321 server whose transactions are relayed, one upstream transaction
 * per client transaction, to the next hop chosen at the first RCPT. The client never hears 250 for
 * a message before the next hop said it; every doubt becomes a 4xx so the client keeps the mail.
 */
class SmtpServerSession {
  private readonly input: ClientInput;
  private readonly client: string;
  private helo?: string;
  private esmtp = false;
  private tx?: Transaction;
  private errors = 0;
  /** An upstream connection kept between transactions of this client, for the same hop. */
  private spare?: { key: string; session: UpstreamSession };
  private readonly closing: Array<Promise<void>> = [];
  /** Set when the session must close after the current reply (timeout or bare LF in DATA). */
  private fatal = false;

  constructor(
    private readonly socket: Socket,
    private readonly opts: SmtpSessionOptions,
  ) {
    // Replies are small writes answered by the next command: Nagle would hold each for an ACK.
    socket.setNoDelay(true);
    this.input = new ClientInput(socket);
    this.client = `${socket.remoteAddress}:${socket.remotePort}`;
  }

  async run(): Promise<void> {
    this.send(reply(220, '', `${this.opts.hostname} ESMTP ticketbooth`));
    try {
      for (;;) {
        if (!(await this.repliesRead())) break;
        const line = await this.input.readLine(MAX_COMMAND, this.opts.idleMs, this.opts.draining);
        const next = await this.handle(line);
        if (next === 'close') break;
        if (this.errors >= MAX_ERRORS) {
          this.send(reply(421, '4.7.0', `${this.opts.hostname} too many errors, closing`));
          break;
        }
      }
    } finally {
      await this.end();
    }
  }

  private async handle(line: CommandLine): Promise<'close' | undefined> {
    switch (line.kind) {
      case 'closed':
        return 'close';
      case 'timeout':
        this.send(reply(421, '4.4.2', `${this.opts.hostname} timeout exceeded, closing`));
        return 'close';
      case 'aborted':
        this.send(reply(421, '4.3.2', `${this.opts.hostname} shutting down, try again later`));
        return 'close';
      case 'too-long':
        return this.error(reply(500, '5.5.2', 'line too long'));
      case 'bad-eol':
        return this.error(reply(500, '5.5.2', 'bare <LF> or <CR> received; lines end in <CR><LF>'));
      case 'nul':
        return this.error(reply(500, '5.5.2', 'NUL character in command'));
      case 'line':
        return this.dispatch(line.text, line.badUtf8 === true);
    }
  }

  /**
   * Back-pressure: while more than REPLY_HIGH_WATER of replies wait unread, read no command (as a
   * synchronous server would not). False when the client read nothing for the idle timeout.
   */
  private repliesRead(): Promise<boolean> {
    const socket = this.socket;
    if (socket.writableLength <= REPLY_HIGH_WATER) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        socket.off('drain', drained);
        socket.off('close', closed);
        if (!ok) socket.destroy(); // it reads nothing: a 421 would only join the queue
        resolve(ok);
      };
      const drained = (): void => done(true);
      const closed = (): void => done(false);
      const timer = setTimeout(() => done(false), this.opts.idleMs);
      socket.once('drain', drained);
      socket.once('close', closed);
    });
  }

  private async dispatch(text: string, badUtf8: boolean): Promise<'close' | undefined> {
    const sp = text.indexOf(' ');
    const verb = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : text.slice(sp + 1).trim();
    // An address is relayed as sent or not at all: invalid UTF-8 would reach the next hop rewritten.
    if (badUtf8 && (verb === 'MAIL' || verb === 'RCPT')) {
      const r = reply(553, '5.6.7', 'address is not valid UTF-8 (RFC 6531)');
      return this.tx && verb === 'RCPT' ? this.answer(this.tx, r) : this.refuse(r);
    }
    switch (verb) {
      case 'EHLO':
      case 'HELO':
        if (!arg) return this.error(reply(501, '5.5.4', `Syntax: ${verb} hostname`));
        await this.abandon();
        this.helo = arg;
        this.esmtp = verb === 'EHLO';
        this.send(verb === 'HELO' ? reply(250, '', this.opts.hostname) : this.ehloReply());
        return;
      case 'MAIL':
        return this.mail(arg);
      case 'RCPT':
        return this.rcpt(arg);
      case 'DATA':
        return this.data(arg);
      case 'RSET':
        if (arg) return this.error(reply(501, '5.5.4', 'Syntax: RSET'));
        await this.abandon();
        this.send(reply(250, '2.0.0', 'Ok'));
        return;
      case 'NOOP':
        this.send(reply(250, '2.0.0', 'Ok'));
        return;
      case 'QUIT':
        this.send(reply(221, '2.0.0', 'Bye'));
        return 'close';
      case 'VRFY':
        if (!arg) return this.error(reply(501, '5.5.4', 'Syntax: VRFY address'));
        this.send(reply(252, '2.5.0', 'Cannot VRFY user, but will relay the message'));
        return;
      case 'HELP':
        this.send(reply(214, '2.0.0', 'Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP'));
        return;
      case 'EXPN':
      case 'STARTTLS':
      case 'AUTH':
      case 'BDAT':
      case 'ETRN':
      case 'TURN':
        return this.error(reply(502, '5.5.1', `${verb} not implemented`));
      default:
        if (NON_SMTP.test(verb)) {
          this.send(reply(421, '4.7.0', `${this.opts.hostname} non-SMTP command, closing`));
          return 'close';
        }
        return this.error(reply(500, '5.5.1', 'command not recognized'));
    }
  }

  private ehloReply(): SmtpReply {
    const lines = [this.opts.hostname, 'PIPELINING', `SIZE ${this.opts.maxMessageSize}`, 'ENHANCEDSTATUSCODES', '8BITMIME', 'SMTPUTF8'];
    return { code: 250, lines, raw: lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join('') };
  }

  private async mail(arg: string): Promise<undefined> {
    if (!this.helo) return this.error(reply(503, '5.5.1', 'send HELO or EHLO first'));
    if (this.tx) return this.error(reply(503, '5.5.1', 'nested MAIL command'));
    const parsed = parseEnvelopeArg(arg, 'FROM');
    if (!parsed.ok) {
      return this.error(parsed.reason === 'syntax' ? reply(501, '5.5.4', 'Syntax: MAIL FROM:<address>') : reply(501, '5.1.7', 'bad sender address syntax'));
    }
    const { params } = parsed.arg;
    if (params.size > 0 && !this.esmtp) return this.error(reply(555, '5.5.4', 'parameters need EHLO'));
    const tx: Transaction = { started: performance.now(), from: parsed.arg, smtputf8: false, recipients: [], lastCode: 0, messageSize: 0 };
    for (const [key, value] of params) {
      if (key === 'SIZE' && value !== undefined && /^\d{1,20}$/.test(value)) {
        tx.size = Number(value);
        if (tx.size > this.opts.maxMessageSize) return this.refuse(reply(552, '5.3.4', 'message size exceeds fixed limit'));
      } else if (key === 'BODY' && value !== undefined && /^(7BIT|8BITMIME)$/i.test(value)) {
        tx.body = value.toUpperCase() as '7BIT' | '8BITMIME';
      } else if (key === 'SMTPUTF8' && value === undefined) {
        tx.smtputf8 = true;
      } else {
        return this.error(reply(555, '5.5.4', `unsupported parameter ${key}`));
      }
    }
    if (parsed.arg.utf8 && !tx.smtputf8) return this.refuse(reply(553, '5.6.7', 'non-ASCII sender address needs SMTPUTF8'));
    this.tx = tx;
    this.send(reply(250, '2.1.0', 'Ok'));
    return undefined;
  }

  private async rcpt(arg: string): Promise<undefined> {
    const tx = this.tx;
    if (!tx) return this.error(reply(503, '5.5.1', 'need MAIL command'));
    const parsed = parseEnvelopeArg(arg, 'TO');
    if (!parsed.ok) {
      return this.error(parsed.reason === 'syntax' ? reply(501, '5.5.4', 'Syntax: RCPT TO:<address>') : reply(501, '5.1.3', 'bad recipient address syntax'));
    }
    const { address, domain, utf8, params } = parsed.arg;
    // No DSN offered, so no NOTIFY/ORCPT: taking them and dropping them would alter the request.
    if (params.size > 0) return this.error(reply(555, '5.5.4', `unsupported parameter ${[...params.keys()][0]}`));
    if (utf8 && !tx.smtputf8) return this.answer(tx, reply(553, '5.6.7', 'non-ASCII recipient address needs SMTPUTF8'));
    if (domain === '') return this.answer(tx, reply(550, '5.1.1', 'no local mailboxes here; ticketbooth only relays'));
    if (tx.recipients.length >= this.opts.maxRecipients) return this.answer(tx, reply(452, '4.5.3', 'too many recipients'));

    const route = this.opts.router.routeFor(domain);
    const key = this.opts.router.hopKey(route, domain);
    if (tx.hop && tx.hop.key !== key) {
      return this.answer(tx, reply(452, '4.5.3', 'this recipient has another next hop; send it in a new transaction'));
    }
    // The client's own RCPT timeout (Postfix: 300 s) runs from here: answer before it fires.
    const budgetEnd = performance.now() + this.opts.upstream.rcptBudgetMs;
    if (!tx.hop) {
      tx.hop = { key, route, domain };
      tx.hopFailure = await this.openHop(tx, budgetEnd);
    }
    if (tx.hopFailure) return this.answer(tx, tx.hopFailure);

    const upstream = tx.upstream!;
    let r: Reply;
    try {
      r = passable(await upstream.command(`RCPT TO:<${address}>`, budgetLeft(budgetEnd, this.opts.upstream.replyMs)), upstream);
    } catch (err) {
      r = this.upstreamFailed(tx, err);
    }
    if (isLocal(r) && r.code === 451) tx.hopFailure = r;
    if (r.code >= 200 && r.code < 300) tx.recipients.push(address);
    return this.answer(tx, r);
  }

  /** Connects (or reuses) the transaction's next hop and sends MAIL FROM; returns a reply on failure. */
  private async openHop(tx: Transaction, budgetEnd: number): Promise<Reply | undefined> {
    const { route, domain, key } = tx.hop!;
    for (let attempt = 0; attempt < 2; attempt++) {
      let upstream: UpstreamSession | undefined;
      let reused = false;
      if (this.spare?.key === key && this.spare.session.alive) {
        upstream = this.spare.session;
        reused = true;
        this.spare = undefined;
      } else {
        this.dropSpare();
        const resolved = await this.opts.router.resolve(route, domain);
        if (!resolved.ok) return resolved.reply;
        const opened = await this.connectFirst(resolved.candidates, route, budgetEnd);
        if (!(opened instanceof UpstreamSession)) return opened;
        upstream = opened;
      }

      const mismatch = this.unsupported(tx, upstream);
      if (mismatch) {
        this.spare = { key, session: upstream };
        return mismatch;
      }
      const ext = upstream.extensions;
      let params = '';
      if (tx.size !== undefined && ext.has('SIZE')) params += ` SIZE=${tx.size}`;
      if (tx.body && ext.has('8BITMIME')) params += ` BODY=${tx.body}`;
      if (tx.smtputf8) params += ' SMTPUTF8';
      let r: SmtpReply;
      try {
        r = await upstream.command(`MAIL FROM:<${tx.from.address}>${params}`, budgetLeft(budgetEnd, this.opts.upstream.replyMs));
      } catch (err) {
        if (reused) continue; // the kept connection had gone stale: once more on a fresh one
        return this.upstreamFailed(tx, err);
      }
      const passed = passable(r, upstream);
      if (r.code >= 200 && r.code < 300) {
        tx.upstream = upstream;
        return undefined;
      }
      if (upstream.alive) this.spare = { key, session: upstream };
      else upstream.abort(); // out of step or closing: neither kept nor left open
      return passed;
    }
    return reply(451, '4.4.2', 'next hop connection failed');
  }

  /**
   * The hosts in order; the first that takes the connection (and TLS as the policy demands) wins.
   * Each host gets `setupMs` at most, and no host is tried once the RCPT budget is spent.
   */
  private async connectFirst(candidates: Array<Parameters<typeof UpstreamSession.open>[0]>, route: Route, budgetEnd: number): Promise<UpstreamSession | Reply> {
    let last: UpstreamError | undefined;
    for (const c of candidates) {
      const now = performance.now();
      if (now >= budgetEnd) {
        const why = last ? `; last: ${last.reply.text}` : '';
        return reply(451, '4.4.1', `no next hop ready within ${this.opts.upstream.rcptBudgetMs / 1000}s${why}`);
      }
      try {
        return await UpstreamSession.open(c, route.tls, route.auth, this.opts.upstream, Math.min(now + this.opts.upstream.setupMs, budgetEnd));
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        last = err;
        if (!err.tryNext) break;
      }
    }
    return last?.reply ?? reply(451, '4.4.1', 'no next hop to try');
  }

  /** Extensions the client used that the next hop lacks: refused, never downgraded (RFC 6152, 6531, 1870). */
  private unsupported(tx: Transaction, upstream: UpstreamSession): LocalReply | undefined {
    const ext = upstream.extensions;
    if (tx.smtputf8 && !ext.has('SMTPUTF8')) return reply(553, '5.6.7', `SMTPUTF8 is required, but was not offered by ${upstream.label}`);
    if (tx.body === '8BITMIME' && !ext.has('8BITMIME')) return reply(554, '5.6.3', `8BITMIME is required, but was not offered by ${upstream.label}; conversion would alter the message`);
    const limit = Number(ext.get('SIZE') ?? '0');
    if (tx.size !== undefined && limit > 0 && tx.size > limit) return reply(552, '5.3.4', `message size exceeds the limit of ${upstream.label} (${limit})`);
    return undefined;
  }

  private async data(arg: string): Promise<'close' | undefined> {
    const tx = this.tx;
    if (arg) return this.error(reply(501, '5.5.4', 'Syntax: DATA'));
    if (!tx) return this.error(reply(503, '5.5.1', 'need MAIL command'));
    if (tx.recipients.length === 0) return this.error(reply(554, '5.5.1', 'no valid recipients'));
    const upstream = tx.upstream!;
    let r: Reply;
    try {
      r = passable(await upstream.command('DATA'), upstream);
    } catch (err) {
      r = this.upstreamFailed(tx, err);
    }
    // DATA gets 354, or a refusal; a 2xx here would tell the client its message was taken.
    if (r.code < 400 && r.code !== 354) r = outOfProtocol(tx, upstream, 'DATA', r.code);
    if (r.code !== 354) return this.finish(tx, r, true);
    this.send(reply(354, '', 'End data with <CR><LF>.<CR><LF>'));
    return this.finish(tx, await this.relayMessage(tx, upstream), false);
  }

  /** Streams the message; returns what the client gets for it, or 'close'-worthy failures as 421/521. */
  private async relayMessage(tx: Transaction, upstream: UpstreamSession): Promise<Reply> {
    const scanner = new DataScanner(this.opts.maxLineLength, this.opts.maxMessageSize);
    let upstreamOk = true;
    // Postfix's smtpd_min_data_rate: the whole of DATA gets `dataMs`, plus 1 s per `minDataRate`
    // bytes received, so a client trickling bytes cannot hold its slot by resetting a timer.
    const started = performance.now();
    let received = 0;
    for (;;) {
      const deadline = this.opts.minDataRate > 0 ? started + this.opts.dataMs + (received * 1000) / this.opts.minDataRate : Infinity;
      const chunk = await this.input.readChunk(Math.max(0, Math.min(this.opts.dataMs, deadline - performance.now())));
      if (typeof chunk !== 'string') received += chunk.length;
      if (chunk === 'timeout' || chunk === 'closed') {
        upstream.abort(); // no final dot: the next hop drops the partial message
        tx.messageSize = scanner.size;
        this.fatal = true;
        return chunk === 'timeout' ? reply(421, '4.4.2', `${this.opts.hostname} timeout exceeded in DATA, closing`) : reply(451, '4.4.2', 'client closed the connection in DATA');
      }
      const res = scanner.push(chunk);
      tx.messageSize = scanner.size;
      if (res.fatal) {
        upstream.abort();
        this.fatal = true;
        return reply(521, '5.5.2', `${this.opts.hostname} bare <LF> or <CR> in message, closing`);
      }
      if (res.forward && upstreamOk) {
        if (upstream.closed) upstreamOk = false;
        else if (!upstream.write(res.forward) && !(await upstream.drained(this.opts.upstream.replyMs))) {
          upstreamOk = false;
          upstream.abort();
        }
      }
      if (res.done) {
        this.input.unshift(res.rest ?? Buffer.alloc(0));
        break;
      }
    }
    if (scanner.spoiled) {
      upstream.abort();
      if (scanner.spoiled === 'too-big') return reply(552, '5.3.4', 'message size exceeds fixed limit');
      if (scanner.spoiled === 'nul') return reply(554, '5.6.0', 'message contains a NUL character; not relayed');
      return reply(554, '5.6.0', `message has a line longer than ${this.opts.maxLineLength} characters; not relayed`);
    }
    if (!upstreamOk || upstream.closed) {
      upstream.abort();
      tx.error = `lost the connection to ${upstream.label} in DATA`;
      return reply(451, '4.4.2', `lost the connection to ${upstream.label} in DATA; try again later`);
    }
    let r: Reply;
    try {
      r = passable(await upstream.endData(), upstream);
    } catch (err) {
      return this.upstreamFailed(tx, err);
    }
    return r.code >= 300 && r.code < 400 ? outOfProtocol(tx, upstream, 'the end of data', r.code) : r;
  }

  /**
   * Ends the transaction after DATA: audit, then keep the upstream for the client's next
   * transaction if it is clean. `upstreamInTransaction`: the next hop refused DATA and still holds
   * the envelope, so it needs an RSET first.
   */
  private async finish(tx: Transaction, r: Reply, upstreamInTransaction: boolean): Promise<'close' | undefined> {
    this.answer(tx, r);
    this.tx = undefined;
    this.audit(tx);
    const up = tx.upstream;
    if (up && tx.hop) {
      if (up.alive && upstreamInTransaction) {
        const rs = await up.command('RSET').catch(() => undefined);
        if (rs?.code !== 250) up.abort();
      }
      if (up.alive) {
        this.dropSpare();
        this.spare = { key: tx.hop.key, session: up };
      } else {
        this.closing.push(up.close());
      }
    }
    if (this.fatal) {
      this.input.discard();
      return 'close';
    }
    return undefined;
  }

  /** RSET, EHLO or the end of the session: drop the transaction, keep a clean upstream. */
  private async abandon(): Promise<void> {
    const tx = this.tx;
    if (!tx) return;
    this.tx = undefined;
    if (tx.hop) {
      tx.error ??= 'abandoned by the client';
      this.audit(tx, true);
    }
    const up = tx.upstream;
    if (up?.alive && tx.hop) {
      const r = await up.command('RSET').catch(() => undefined);
      if (r?.code === 250 && up.alive) {
        this.dropSpare();
        this.spare = { key: tx.hop.key, session: up };
        return;
      }
    }
    if (up) this.closing.push(up.quit());
  }

  private upstreamFailed(tx: Transaction, err: unknown): LocalReply {
    if (!(err instanceof UpstreamError)) throw err;
    tx.error = err.message;
    return err.reply;
  }

  private dropSpare(): void {
    if (this.spare) this.closing.push(this.spare.session.quit());
    this.spare = undefined;
  }

  /** `abandoned`: the client ended the transaction before any reply to DATA or to the end of data. */
  private audit(tx: Transaction, abandoned = false): void {
    const event: SmtpTransactionEvent = {
      event: 'smtp.transaction',
      listener: this.opts.listener,
      client: this.client,
      ...(tx.upstream || tx.hop ? { nextHop: tx.upstream?.label ?? `${tx.hop!.route.mode}:${tx.hop!.route.host ?? tx.hop!.domain}` } : {}),
      recipients: tx.recipients.length,
      size: tx.messageSize,
      code: tx.lastCode,
      ms: Math.round(performance.now() - tx.started),
    };
    const from = forLog(tx.from.address, this.opts.logAddresses);
    if (from !== undefined) {
      event.from = from;
      event.to = tx.recipients.map((r) => forLog(r, this.opts.logAddresses)!);
    }
    if (tx.error) event.error = tx.error;
    if (abandoned) event.abandoned = true;
    this.opts.audit.record(event);
  }

  private answer(tx: Transaction, r: Reply): undefined {
    tx.lastCode = r.code;
    this.send(r);
    return undefined;
  }

  /** A refusal that is not a client error (no error count). */
  private refuse(r: LocalReply): undefined {
    this.send(r);
    return undefined;
  }

  private error(r: LocalReply): undefined {
    this.errors++;
    this.send(r);
    return undefined;
  }

  private send(r: Reply): void {
    if (this.socket.writable) this.socket.write(format(r));
  }

  private async end(): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    if (tx?.hop) {
      tx.error ??= 'client went away';
      this.audit(tx, true);
    }
    if (tx?.upstream) this.closing.push(tx.upstream.quit());
    this.dropSpare();
    if (!this.socket.destroyed) this.socket.end();
    await Promise.allSettled(this.closing);
  }
}

/** A reply the command does not allow: the connection's state is unknown, so it is dropped and the mail kept. */
function outOfProtocol(tx: Transaction, upstream: UpstreamSession, what: string, code: number): LocalReply {
  upstream.abort();
  tx.error = `${upstream.label} answered ${what} with ${code}`;
  return reply(451, '4.5.0', `${upstream.label} answered ${what} out of protocol`);
}

/** A reply wait: `replyMs`, but never past the RCPT budget (at least 1 ms, so it still times out cleanly). */
function budgetLeft(budgetEnd: number, replyMs: number): number {
  return Math.max(1, Math.min(replyMs, budgetEnd - performance.now()));
}

/**
 * An upstream reply as the client may see it. A 421 means the next hop is closing, not us: the
 * client gets 451 and keeps its session. Codes outside 2xx-5xx are a protocol error.
 */
function passable(r: SmtpReply, upstream: UpstreamSession): Reply {
  if (r.code === 421) {
    upstream.abort();
    return reply(451, '4.4.2', `${upstream.label} is closing: ${r.lines.join(' ').slice(0, 200)}`);
  }
  if (r.code < 200 || r.code >= 600) {
    upstream.abort();
    return reply(451, '4.5.0', `${upstream.label} answered out of protocol`);
  }
  return r;
}
