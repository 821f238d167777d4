import type { Socket } from 'node:net';
import type { AuditLog } from '../audit/audit-log.js';
import { ClientInput, type CommandLine } from './client-input.js';
import { ClientOutput } from './client-output.js';
import { poolKey, type ConnectionCache } from './connection-cache.js';
import type { DataLimits } from './data-relay.js';
import { dataPhase } from './data-phase.js';
import { dsnSuffix, rcptDsn, type RcptDsn } from './dsn-params.js';
import { parseEnvelopeArg } from './envelope.js';
import type { UpstreamOptions } from './next-hop.js';
import { ehloReply, format, isLocal, reply, type LocalReply, type Reply } from './replies.js';
import type { Router } from './routing.js';
import { budgetLeft, envelopeOf, startUpstream, transactionEvent, type ClientTransaction, type Transaction } from './transaction.js';
import type { SpoolWorker } from './spool/worker.js';
import { routeForEnvelope } from './tls-required-no.js';
import { upstreamReply } from './upstream-replies.js';

export interface SmtpSessionOptions extends DataLimits {
  listener: string;
  /** `lmtp`: LHLO, up to `maxNextHops` next hops per transaction, one reply per recipient after the data (RFC 2033). */
  protocol: 'smtp' | 'lmtp';
  maxNextHops: number;
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
  /** Where the SMTP front holds a message some next hops took and others refused: with it, a transaction spans up to `maxNextHops`. */
  spool?: SpoolWorker;
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
 * The cleartext side: an RFC 5321 (or RFC 2033 LMTP) server whose transactions are relayed, one
 * upstream transaction per next hop the recipients go to: under LMTP several, each recipient told
 * its own hop's verdict after the data; under SMTP several with a spool (one reply for all), else
 * one. The client never hears 250 for a message before every hop said it, unless the message is
 * held on disk first; every doubt becomes a 4xx so the client keeps the mail.
 */
class SmtpServerSession {
  private readonly input: ClientInput;
  private readonly output: ClientOutput;
  private readonly client: string;
  private helo?: string;
  private esmtp = false;
  private tx?: ClientTransaction;
  private errors = 0;
  private readonly lmtp: boolean;
  /** DSN (RFC 3461) is announced and its parameters taken: only where the spool can hold what it may owe. */
  private readonly dsn: boolean;

  constructor(
    socket: Socket,
    private readonly opts: SmtpSessionOptions,
  ) {
    this.output = new ClientOutput(socket);
    this.input = new ClientInput(socket, () => this.output.flush());
    this.client = `${socket.remoteAddress}:${socket.remotePort}`;
    this.lmtp = opts.protocol === 'lmtp';
    this.dsn = !this.lmtp && opts.spool !== undefined;
  }

  async run(): Promise<void> {
    this.send(reply(220, '', `${this.opts.hostname} ${this.lmtp ? 'LMTP' : 'ESMTP'} ticketbooth`));
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
      case 'LHLO':
        // LMTP greets with LHLO only, SMTP never (RFC 2033 4.1).
        if ((verb === 'LHLO') !== this.lmtp) return this.error(reply(500, '5.5.1', 'command not recognized'));
        if (!arg) return this.error(reply(501, '5.5.4', `Syntax: ${verb} hostname`));
        await this.abandon();
        this.helo = arg;
        this.esmtp = verb !== 'HELO';
        this.send(verb === 'HELO' ? reply(250, '', this.opts.hostname) : ehloReply(this.opts.hostname, this.opts.maxMessageSize, this.dsn));
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
    const envelope = envelopeOf(parsed.arg, this.opts.maxMessageSize, this.dsn);
    if ('refusal' in envelope) return envelope.counted ? this.error(envelope.refusal) : this.refuse(envelope.refusal);
    this.tx = { envelope, hops: [], accepted: [] };
    this.send(reply(250, '2.1.0', 'Ok'));
    return undefined;
  }

  private async rcpt(arg: string): Promise<undefined> {
    const ctx = this.tx;
    if (!ctx) return this.error(reply(503, '5.5.1', 'need MAIL command'));
    const parsed = parseEnvelopeArg(arg, 'TO');
    if (!parsed.ok) {
      return this.error(
        parsed.reason === 'syntax' ? reply(501, '5.5.4', 'Syntax: RCPT TO:<address>') : reply(501, '5.1.3', 'bad recipient address syntax'),
      );
    }
    const { address, domain, utf8, params } = parsed.arg;
    // No DSN offered (or HELO), so no NOTIFY/ORCPT: taking them and dropping them would alter the request.
    if (params.size > 0 && (!this.dsn || !this.esmtp))
      return this.error(reply(555, '5.5.4', `unsupported parameter ${[...params.keys()][0]}`));
    const dsn: RcptDsn | LocalReply | undefined = params.size > 0 ? rcptDsn(parsed.arg) : undefined;
    if (dsn && 'code' in dsn) return this.error(dsn);
    if (utf8 && !ctx.envelope.smtputf8) return this.answer(ctx, reply(553, '5.6.7', 'non-ASCII recipient address needs SMTPUTF8'));
    if (domain === '') return this.answer(ctx, reply(550, '5.1.1', 'no local mailboxes here; ticketbooth only relays'));
    if (ctx.accepted.length >= this.opts.maxRecipients) return this.answer(ctx, reply(452, '4.5.3', 'too many recipients'));

    const route = routeForEnvelope(this.opts.router.routeFor(domain), ctx.envelope);
    const key = this.opts.router.hopKey(route, domain);
    let tx = ctx.hops.find((h) => h.hop?.key === key);
    const fanOut = this.lmtp || this.opts.spool !== undefined;
    if (!tx && ctx.hops.length >= (fanOut ? this.opts.maxNextHops : 1)) {
      const why = fanOut ? `more than ${this.opts.maxNextHops} next hops` : 'this recipient has another next hop';
      return this.answer(ctx, reply(452, '4.5.3', `${why}; send it in a new transaction`));
    }
    // The client's own RCPT timeout (Postfix: 300 s) runs from here: answer before it fires.
    const budgetEnd = performance.now() + this.opts.upstream.rcptBudgetMs;
    // NOTIFY/ORCPT as received, to a hop that announces DSN; for one that does not, ticketbooth answers (data-phase).
    const line = (c: { extensions: ReadonlyMap<string, string> }): string =>
      `RCPT TO:<${address}>${c.extensions.has('DSN') ? dsnSuffix(dsn?.words) : ''}`;
    /** The first RCPT to a hop went in one group with MAIL. */
    let first: Reply | undefined;
    if (!tx) {
      tx = { ...ctx.envelope, recipients: [], rcptDsn: [], lastCode: 0, messageSize: 0 };
      tx.hop = { key, route, domain, pool: poolKey(key, route, this.opts.upstream.heloName) };
      ctx.hops.push(tx);
      const started = await startUpstream(tx, line, this.opts.connections, this.opts.router, this.opts.upstream, budgetEnd);
      if ('failure' in started) {
        tx.hopFailure = started.failure;
        // The audit line's reason: why the hop failed, not how the client left afterwards.
        tx.error ??= isLocal(started.failure) ? started.failure.text : started.failure.lines.join(' ');
      } else first = started.rcpt;
    }
    if (tx.hopFailure) return this.answer(ctx, tx.hopFailure, tx);
    const upstream = tx.upstream!;
    const r =
      first ?? (await upstreamReply(tx, upstream, upstream.command(line(upstream), budgetLeft(budgetEnd, this.opts.upstream.replyMs))));
    if (isLocal(r) && r.code === 451) tx.hopFailure = r;
    if (r.code >= 200 && r.code < 300) {
      tx.recipients.push(address);
      tx.rcptDsn.push(dsn);
      if (dsn && upstream.extensions.has('DSN')) (tx.dsnCount ??= { passedOn: 0, local: 0 }).passedOn++;
      ctx.accepted.push(tx);
    }
    return this.answer(ctx, r, tx);
  }

  private async data(arg: string): Promise<'close' | undefined> {
    const ctx = this.tx;
    if (arg) return this.error(reply(501, '5.5.4', 'Syntax: DATA'));
    if (!ctx) return this.error(reply(503, '5.5.1', 'need MAIL command'));
    // RFC 2033 4.2: LMTP's DATA without a recipient fails with 503.
    if (ctx.accepted.length === 0) return this.error(reply(this.lmtp ? 503 : 554, '5.5.1', 'no valid recipients'));
    const phase = { ...this.opts, replyMs: this.opts.upstream.replyMs };
    const r = await dataPhase(ctx, this.input, phase, this.lmtp, (x) => this.send(x));
    return this.finish(ctx, r.verdicts, r.ended, r.once, r.fatal);
  }

  /**
   * Ends the transaction after DATA: the client's reply (`once`: one for the message; else one per
   * accepted recipient, LMTP), audit, then keep each upstream for the client's next transaction if
   * it is clean (a hop outside `ended`, whose transaction did not end with the data, still holds an
   * envelope: RSET first). `fatal`: the session closes after this reply.
   */
  private async finish(
    ctx: ClientTransaction,
    verdicts: Map<Transaction, Reply>,
    ended: ReadonlySet<Transaction>,
    once?: Reply,
    fatal = false,
  ): Promise<'close' | undefined> {
    if (once) this.send(once);
    else for (const h of ctx.accepted) this.send(verdicts.get(h)!);
    this.tx = undefined;
    for (const h of ctx.hops) {
      h.lastCode = (verdicts.get(h) ?? once)?.code ?? h.lastCode;
      this.audit(ctx, h);
    }
    await Promise.all(
      ctx.hops.map(async (h) => {
        if (h.upstream && h.hop) await this.opts.connections.release(h.hop.pool, h.upstream, !ended.has(h));
      }),
    );
    if (fatal) {
      this.input.discard();
      return 'close';
    }
    return undefined;
  }

  /** RSET, EHLO or the end of the session: drop the transaction, keep each clean upstream. */
  private async abandon(): Promise<void> {
    const ctx = this.tx;
    if (!ctx) return;
    this.tx = undefined;
    for (const h of ctx.hops) {
      h.error ??= 'abandoned by the client';
      this.audit(ctx, h, true);
    }
    await Promise.all(ctx.hops.map(async (h) => h.upstream && h.hop && this.opts.connections.release(h.hop.pool, h.upstream, true)));
  }

  /** One hop's line. `abandoned`: the client ended the transaction before any reply to DATA or to the end of data. */
  private audit(ctx: ClientTransaction, tx: Transaction, abandoned = false): void {
    const { listener, logAddresses } = this.opts;
    this.opts.audit.record(transactionEvent(tx, { listener, client: this.client, logAddresses }, abandoned, ctx.hops.length));
  }

  /** A reply to a RCPT: the audit line's code of its hop (`tx`), or of every hop when it is none's. */
  private answer(ctx: ClientTransaction, r: Reply, tx?: Transaction): undefined {
    for (const h of tx ? [tx] : ctx.hops) h.lastCode = r.code;
    this.send(r);
    return undefined;
  }

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
    const ctx = this.tx;
    this.tx = undefined;
    for (const h of ctx?.hops ?? []) {
      h.error ??= 'client went away';
      this.audit(ctx!, h, true);
      if (h.upstream) this.opts.connections.discard(h.upstream);
    }
    await this.output.end(this.opts.idleMs);
    await this.input.linger(this.opts.draining);
  }
}
