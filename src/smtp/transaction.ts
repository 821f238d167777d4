import type { DaneAudit, SmtpTransactionEvent, StsAudit } from '../audit/events.js';
import { SmtpClient } from '../upstream/smtp-client/client.js';
import type { SmtpReply } from '../upstream/smtp-client/reply-reader.js';
import type { ConnectionCache } from './connection-cache.js';
import { dsnSuffix, MAIL_DSN_KEYS, mailDsnParam, type MailDsn, type RcptDsn } from './dsn-params.js';
import { forLog, type EnvelopeArg } from './envelope.js';
import { connectFirst, type UpstreamOptions } from './next-hop.js';
import { reply, type LocalReply, type Reply } from './replies.js';
import type { Route, Router } from './routing.js';
import { requireTlsBlock, requireTlsText, type RequireTlsBlock } from './requiretls.js';
import { policyBypassOf, TLS_REQUIRED_KEYWORD } from './tls-required-no.js';
import { passable, transactionFailed } from './upstream-replies.js';

/** What MAIL FROM said: every next hop of the transaction gets it. */
export interface Envelope {
  started: number;
  from: EnvelopeArg;
  size?: number;
  body?: '7BIT' | '8BITMIME';
  smtputf8: boolean;
  /** MAIL … REQUIRETLS (RFC 8689): only to a next hop found securely, authenticated, and announcing it. */
  requireTls?: true;
  /** MAIL … X-TLS-REQUIRED=NO: the recipient domain's TLS policies are set aside (tls-required-no.ts). */
  tlsRequiredNo?: true;
  /** MAIL's RET/ENVID (RFC 3461), on a listener that announces DSN. */
  dsn?: MailDsn;
}

/**
 * One client transaction: one upstream transaction per next hop its recipients go to (up to
 * `maxNextHops`: under LMTP each recipient gets its own verdict; under SMTP one reply covers them
 * all, so several hops need the spool, else one).
 */
export interface ClientTransaction {
  envelope: Envelope;
  hops: Transaction[];
  /** The hop of each recipient accepted so far, in the order accepted: LMTP's replies after the data. */
  accepted: Transaction[];
}

/**
 * MAIL FROM's parameters (SIZE, BODY, SMTPUTF8) as the envelope, or why it is refused: `counted`
 * when that is a client error (a parameter never offered).
 */
export function envelopeOf(
  from: EnvelopeArg,
  maxMessageSize: number,
  dsnOffered = false,
): Envelope | { refusal: LocalReply; counted: boolean } {
  const e: Envelope = { started: performance.now(), from, smtputf8: false };
  for (const [key, value] of from.params) {
    if (dsnOffered && MAIL_DSN_KEYS.has(key)) {
      e.dsn ??= { words: [] };
      const refusal = mailDsnParam(e.dsn, from, key, value);
      if (refusal) return { refusal, counted: true };
    } else if (key === 'SIZE' && value !== undefined && /^\d{1,20}$/.test(value)) {
      e.size = Number(value);
      if (e.size > maxMessageSize) return { refusal: reply(552, '5.3.4', 'message size exceeds fixed limit'), counted: false };
    } else if (key === 'BODY' && value !== undefined && /^(7BIT|8BITMIME)$/i.test(value)) {
      e.body = value.toUpperCase() as '7BIT' | '8BITMIME';
    } else if (key === 'SMTPUTF8' && value === undefined) {
      e.smtputf8 = true;
    } else if (key === 'REQUIRETLS' && value === undefined) {
      e.requireTls = true;
    } else if (key === TLS_REQUIRED_KEYWORD && value?.toUpperCase() === 'NO') {
      e.tlsRequiredNo = true;
    } else {
      return { refusal: reply(555, '5.5.4', `unsupported parameter ${key}`), counted: true };
    }
  }
  if (from.utf8 && !e.smtputf8) return { refusal: reply(553, '5.6.7', 'non-ASCII sender address needs SMTPUTF8'), counted: false };
  return e;
}

/** The part of a client transaction that goes to one next hop, relayed as one upstream transaction. */
export interface Transaction extends Envelope {
  /** Fixed by the recipient that opened it: every recipient for the same hop goes there. */
  hop?: { key: string; route: Route; domain: string; /** Its connections' key in the connection cache (`poolKey`). */ pool: string };
  /** Why the hop cannot be used; every recipient for it gets this. */
  hopFailure?: Reply;
  /** Holds this transaction's MAIL FROM. */
  upstream?: SmtpClient;
  /** `upstream` came from the connection cache: how old it was, and which of its transactions this is. */
  reused?: { ageMs: number; use: number };
  /** Under a DANE level: the verdict on the host used, or on the last host tried. */
  dane?: DaneAudit;
  /** Under MTA-STS: the policy and the outcome on the host used, or on the last host tried, or why none was. */
  sts?: StsAudit;
  /** Why the upstream connection is cleartext, when it is. */
  cleartext?: SmtpTransactionEvent['cleartext'];
  /** Under REQUIRETLS: `passed-on`, or why the hop could not carry the message. */
  requireTlsResult?: SmtpTransactionEvent['requireTls'];
  recipients: string[];
  /** Each recipient's NOTIFY/ORCPT (RFC 3461), in `recipients` order. */
  rcptDsn: Array<RcptDsn | undefined>;
  /** DSN requests (recipients with NOTIFY/ORCPT) given to a hop that announces DSN, and answered by ticketbooth itself. */
  dsnCount?: { passedOn: number; local: number };
  /** The SMTP front: this hop failed after another took the message; the spool entry that holds it for its recipients. */
  spooled?: string;
  lastCode: number;
  messageSize: number;
  error?: string;
}

/** How the first RCPT's upstream side went: the hop cannot be used (`failure`), or the next hop's reply to that RCPT. */
export type Started = { failure: Reply } | { rcpt: Reply };

/**
 * The upstream side of the transaction's first RCPT: a cached connection to its hop that fits the
 * transaction, else a new one (the route's hosts in order), then MAIL FROM with the client's
 * parameters and that RCPT, in one write where the next hop pipelines (RFC 2920). Sets
 * `tx.upstream` once MAIL is accepted.
 */
export async function startUpstream(
  tx: Transaction,
  rcpt: (client: SmtpClient) => string,
  cache: ConnectionCache,
  router: Router,
  opts: UpstreamOptions,
  budgetEnd: number,
): Promise<Started> {
  const { route, domain, pool: key } = tx.hop!;
  const first = { lines: (client: SmtpClient) => [mailCommand(tx, client), rcpt(client)], timeoutMs: budgetLeft(budgetEnd, opts.replyMs) };
  // A connection made under a DANE decision is not reused once that decision's TLSA answer is stale.
  // One made under an MTA-STS policy only while a fresh lookup says the same policy applies.
  const fits = (client: SmtpClient): boolean =>
    unsupported(tx, client) === undefined &&
    (!tx.requireTls || (client.trust?.requireTls === true && client.extensions.has('REQUIRETLS'))) &&
    (client.trust?.until ?? Infinity) > performance.now() &&
    (client.trust?.stsApplied === undefined || router.sts?.applied(domain) === client.trust.stsApplied);
  const cached = await cache.take(key, fits, first);
  let upstream: SmtpClient;
  let replies: SmtpReply[];
  if (cached) {
    upstream = cached.client;
    replies = cached.replies;
  } else {
    const resolved = await router.resolve(route, domain);
    if (resolved.sts) tx.sts = resolved.sts;
    if (!resolved.ok) return { failure: resolved.reply };
    // REQUIRETLS: hosts that could not carry it are never connected to (4.2.1).
    const candidates = tx.requireTls ? resolved.candidates.filter((c) => requireTlsBlock(c, route) === undefined) : resolved.candidates;
    if (candidates.length === 0) {
      const first = resolved.candidates[0];
      return { failure: refuseRequireTls(tx, first.hostName, requireTlsBlock(first, route)!) };
    }
    const opened = await connectFirst(candidates, route, opts, budgetEnd);
    if (!(opened instanceof SmtpClient)) {
      if (opened.dane) tx.dane = opened.dane;
      if (opened.sts) tx.sts = { ...tx.sts, ...opened.sts };
      return { failure: opened.reply };
    }
    upstream = opened;
    if (tx.requireTls && !upstream.extensions.has('REQUIRETLS')) {
      await cache.release(key, upstream, false);
      return { failure: refuseRequireTls(tx, upstream.label, 'not-announced') };
    }
    const mismatch = unsupported(tx, upstream);
    if (mismatch) {
      await cache.release(key, upstream, false);
      return { failure: mismatch };
    }
    try {
      const t = budgetLeft(budgetEnd, opts.replyMs);
      replies = await upstream.commands(first.lines(upstream), [t, t]);
    } catch (err) {
      return { failure: transactionFailed(tx, err, upstream) };
    }
  }
  if (upstream.trust?.dane) tx.dane = upstream.trust.dane;
  // The policy and this host's outcome; the domain-level facts (a fetch that failed) from the lookup.
  if (upstream.trust?.sts) tx.sts = { ...tx.sts, ...upstream.trust.sts };
  if (upstream.trust?.cleartext) tx.cleartext = upstream.trust.cleartext;
  const [mail, rcptReply] = replies;
  const passed = passable(mail, upstream);
  if (mail.code >= 200 && mail.code < 300) {
    tx.upstream = upstream;
    if (tx.requireTls) tx.requireTlsResult = 'passed-on';
    if (cached) tx.reused = { ageMs: cached.ageMs, use: cached.use };
    return { rcpt: passable(rcptReply, upstream) };
  }
  // MAIL refused: the RCPT behind it was refused too (no transaction), and the connection is in step.
  if (upstream.alive) await cache.release(key, upstream, false);
  else upstream.abort(); // out of step or closing: neither cached nor left open
  return { failure: passed };
}

/** A REQUIRETLS message that `host` cannot carry: refused at RCPT with 5.7.30 (so no notification is owed), the reason audited. */
function refuseRequireTls(tx: Transaction, host: string, block: RequireTlsBlock): LocalReply {
  tx.requireTlsResult = block;
  return reply(550, '5.7.30', requireTlsText(host, block));
}

/** MAIL FROM with the client's parameters that the connection's next hop announced (SMTPUTF8 is checked before). */
function mailCommand(tx: Transaction, upstream: SmtpClient): string {
  const ext = upstream.extensions;
  let params = '';
  if (tx.size !== undefined && ext.has('SIZE')) params += ` SIZE=${tx.size}`;
  if (tx.body && ext.has('8BITMIME')) params += ` BODY=${tx.body}`;
  if (tx.smtputf8) params += ' SMTPUTF8';
  // Only ever sent to a hop that announced it (startUpstream checks before MAIL).
  if (tx.requireTls) params += ' REQUIRETLS';
  // RET/ENVID as received, to a hop that can honour them (else ticketbooth answers for them, RFC 3461 6.2).
  if (ext.has('DSN')) params += dsnSuffix(tx.dsn?.words);
  return `MAIL FROM:<${tx.from.address}>${params}`;
}

/** Extensions the client used that the next hop lacks: refused, never downgraded (RFC 6152, 6531, 1870). */
function unsupported(tx: Transaction, upstream: SmtpClient): LocalReply | undefined {
  const ext = upstream.extensions;
  if (tx.smtputf8 && !ext.has('SMTPUTF8')) return reply(553, '5.6.7', `SMTPUTF8 is required, but was not offered by ${upstream.label}`);
  if (tx.body === '8BITMIME' && !ext.has('8BITMIME'))
    return reply(554, '5.6.3', `8BITMIME is required, but was not offered by ${upstream.label}; conversion would alter the message`);
  const limit = Number(ext.get('SIZE') ?? '0');
  if (tx.size !== undefined && limit > 0 && tx.size > limit)
    return reply(552, '5.3.4', `message size exceeds the limit of ${upstream.label} (${limit})`);
  return undefined;
}

/** A reply wait: `replyMs`, but never past the RCPT budget (at least 1 ms, so it still times out cleanly). */
export function budgetLeft(budgetEnd: number, replyMs: number): number {
  return Math.max(1, Math.min(replyMs, budgetEnd - performance.now()));
}

/** Who a transaction line is about, and how much of the envelope it may say. */
export interface TransactionLogging {
  listener: string;
  client: string;
  logAddresses: 'none' | 'domain' | 'full';
}

/**
 * The `smtp.transaction` line of one next hop's part. `abandoned`: the client ended the transaction
 * before any reply to DATA or to the end of data; `hops`: how many next hops the client's transaction spanned.
 */
export function transactionEvent(tx: Transaction, who: TransactionLogging, abandoned: boolean, hops = 1): SmtpTransactionEvent {
  const event: SmtpTransactionEvent = {
    event: 'smtp.transaction',
    listener: who.listener,
    client: who.client,
    ...(tx.upstream || tx.hop ? { nextHop: tx.upstream?.label ?? plannedHop(tx.hop!) } : {}),
    recipients: tx.recipients.length,
    size: tx.messageSize,
    code: tx.lastCode,
    ms: Math.round(performance.now() - tx.started),
  };
  const from = forLog(tx.from.address, who.logAddresses);
  if (from !== undefined) {
    event.from = from;
    event.to = tx.recipients.map((r) => forLog(r, who.logAddresses)!);
  }
  if (tx.error) event.error = tx.error;
  if (abandoned) event.abandoned = true;
  if (tx.reused) event.reused = tx.reused;
  if (tx.dane) event.dane = tx.dane;
  if (tx.sts) event.sts = tx.sts;
  if (tx.cleartext) event.cleartext = tx.cleartext;
  if (tx.requireTlsResult) event.requireTls = tx.requireTlsResult;
  const bypass = policyBypassOf(tx.hop?.route);
  if (bypass) event.policyBypass = bypass;
  if (hops > 1) event.hops = hops;
  if (tx.spooled) event.spooled = tx.spooled;
  if (tx.dsnCount) event.dsn = tx.dsnCount;
  return event;
}

/**
 * The next hop of a transaction that never got a connection, in the form a connected one has
 * (`host:port`, as the upstream's label): the relay host, or in mode mx the recipient domain.
 */
function plannedHop(hop: NonNullable<Transaction['hop']>): string {
  return hop.route.mode === 'relay' ? `${hop.route.host}:${hop.route.port}` : `${hop.domain}:${hop.route.port}`;
}
