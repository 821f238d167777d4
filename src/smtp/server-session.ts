import type { Socket } from 'node:net';
import type { AuditLog } from '../audit/audit-log.js';
import type { SmtpReply } from '../upstream/smtp-client/reply-reader.js';
import { ClientInput, type CommandLine } from './client-input.js';
import { ClientOutput } from './client-output.js';
import { poolKey, type ConnectionCache } from './connection-cache.js';
import { relayMessage, type DataLimits } from './data-relay.js';
import { parseEnvelopeArg } from './envelope.js';
import type { UpstreamOptions } from './next-hop.js';
import { format, isLocal, reply, type LocalReply, type Reply } from './replies.js';
import type { Router } from './routing.js';
import { budgetLeft, startUpstream, transactionEvent, type Transaction } from './transaction.js';
import { outOfProtocol, upstreamReply } from './upstream-replies.js';

export interface SmtpSessionOptions extends DataLimits {
  listener: string;
  maxRecipients: number;
  idleMs: number;
  logAddresses: 'none' | 'domain' | 'full';
  audit: AuditLog;
  router: Router;
  upstream: UpstreamOptions;
  /** Aborted when the listener stops: idle clients get 421 at their next wait. */
  draining: AbortSignal;
  /** Upstream connections between transactions, shared by the listener's sessions. */
  connections: ConnectionCache;
}

/** RFC 5321 leaves room for extension parameters; Postfix's limit. */
const MAX_COMMAND = 2048;
/** After this many errors the client is told 421 and dropped (Postfix's smtpd_hard_error_limit is 20). */
const MAX_ERRORS = 10;
const NON_SMTP = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT)$/;

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
  private readonly output: ClientOutput;
  private readonly client: string;
  private helo?: string;
  private esmtp = false;
  private tx?: Transaction;
  private errors = 0;

  constructor(
    socket: Socket,
    private readonly opts: SmtpSessionOptions,
  ) {
    this.output = new ClientOutput(socket);
    this.input = new ClientInput(socket, () => this.output.flush());
    this.client = `${socket.remoteAddress}:${socket.remotePort}`;
  }

  async run(): Promise<void> {
    this.send(reply(220, '', `${this.opts.hostname} ESMTP ticketbooth`));
    try {
      for (;;) {
        if (!(await this.output.readByClient(this.opts.idleMs))) break;
        const line = await this.input.readLine(MAX_COMMAND, this.opts.idleMs, this.opts.draining);
        this.output.hold(); // until the client has to be waited for: one write per pipelined group
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
      return this.error(
        parsed.reason === 'syntax' ? reply(501, '5.5.4', 'Syntax: MAIL FROM:<address>') : reply(501, '5.1.7', 'bad sender address syntax'),
      );
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
      return this.error(
        parsed.reason === 'syntax' ? reply(501, '5.5.4', 'Syntax: RCPT TO:<address>') : reply(501, '5.1.3', 'bad recipient address syntax'),
      );
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
    const line = `RCPT TO:<${address}>`;
    /** The first RCPT went in one group with MAIL. */
    let first: Reply | undefined;
    if (!tx.hop) {
      tx.hop = { key, route, domain, pool: poolKey(key, route, this.opts.upstream.heloName) };
      const started = await startUpstream(tx, line, this.opts.connections, this.opts.router, this.opts.upstream, budgetEnd);
      if ('failure' in started) {
        tx.hopFailure = started.failure;
        // The audit line's reason: why the hop failed, not how the client left afterwards.
        tx.error ??= isLocal(started.failure) ? started.failure.text : started.failure.lines.join(' ');
      } else first = started.rcpt;
    }
    if (tx.hopFailure) return this.answer(tx, tx.hopFailure);
    const upstream = tx.upstream!;
    const r = first ?? (await upstreamReply(tx, upstream, upstream.command(line, budgetLeft(budgetEnd, this.opts.upstream.replyMs))));
    if (isLocal(r) && r.code === 451) tx.hopFailure = r;
    if (r.code >= 200 && r.code < 300) tx.recipients.push(address);
    return this.answer(tx, r);
  }

  private async data(arg: string): Promise<'close' | undefined> {
    const tx = this.tx;
    if (arg) return this.error(reply(501, '5.5.4', 'Syntax: DATA'));
    if (!tx) return this.error(reply(503, '5.5.1', 'need MAIL command'));
    if (tx.recipients.length === 0) return this.error(reply(554, '5.5.1', 'no valid recipients'));
    const upstream = tx.upstream!;
    let r = await upstreamReply(tx, upstream, upstream.command('DATA'));
    // DATA gets 354, or a refusal; a 2xx here would tell the client its message was taken.
    if (r.code < 400 && r.code !== 354) r = outOfProtocol(tx, upstream, 'DATA', r.code);
    if (r.code !== 354) return this.finish(tx, r, true);
    this.send(reply(354, '', 'End data with <CR><LF>.<CR><LF>'));
    const relayed = await relayMessage(this.input, upstream, tx, this.opts, this.opts.upstream.replyMs);
    return this.finish(tx, relayed.reply, false, relayed.fatal);
  }

  /**
   * Ends the transaction after DATA: audit, then keep the upstream for the client's next
   * transaction if it is clean. `upstreamInTransaction`: the next hop refused DATA and still holds
   * the envelope, so it needs an RSET first. `fatal`: the session closes after this reply.
   */
  private async finish(tx: Transaction, r: Reply, upstreamInTransaction: boolean, fatal = false): Promise<'close' | undefined> {
    this.answer(tx, r);
    this.tx = undefined;
    this.audit(tx);
    if (tx.upstream && tx.hop) await this.opts.connections.release(tx.hop.pool, tx.upstream, upstreamInTransaction);
    if (fatal) {
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
    if (tx.upstream && tx.hop) await this.opts.connections.release(tx.hop.pool, tx.upstream, true);
  }

  /** `abandoned`: the client ended the transaction before any reply to DATA or to the end of data. */
  private audit(tx: Transaction, abandoned = false): void {
    const { listener, logAddresses } = this.opts;
    this.opts.audit.record(transactionEvent(tx, { listener, client: this.client, logAddresses }, abandoned));
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
    this.output.send(format(r));
  }

  private async end(): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    if (tx?.hop) {
      tx.error ??= 'client went away';
      this.audit(tx, true);
    }
    if (tx?.upstream) this.opts.connections.discard(tx.upstream);
    await this.output.end(this.opts.idleMs);
  }
}
