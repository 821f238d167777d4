import type { ClientInput } from './client-input.js';
import { wants } from './dsn-params.js';
import type { SpoolRecipient } from './spool/entry.js';
import { relayMessage, type DataLimits } from './data-relay.js';
import { isLocal, reply, type Reply } from './replies.js';
import type { BodyFile } from './spool/store.js';
import type { SpoolWorker } from './spool/worker.js';
import type { ClientTransaction, Transaction } from './transaction.js';
import { outOfProtocol, upstreamReply } from './upstream-replies.js';
import { say } from '../util/operator-log.js';

export interface DataPhaseOptions extends DataLimits {
  listener: string;
  replyMs: number;
  /** The SMTP front's spool: present when a transaction may span several next hops. */
  spool?: SpoolWorker;
}

/**
 * How DATA ended: each hop's verdict, the hops whose transaction ended with it (the others still
 * hold an envelope), the one reply for the client (none under LMTP: one per recipient), and
 * `fatal` when the session closes after it.
 */
export interface DataOutcome {
  verdicts: Map<Transaction, Reply>;
  ended: Set<Transaction>;
  once?: Reply;
  fatal: boolean;
}

/**
 * DATA to every hop with an accepted recipient, the message to each that said 354, and the
 * verdict. On the SMTP front with several hops the client hears one reply for all of them: the
 * body goes to the spool as it streams, the first hop commits alone (a refusal there aborts the
 * others before their dot), and when some hops took the message and others did not, the client
 * gets 250 only once the message is held on disk for the recipients that failed.
 */
export async function dataPhase(
  ctx: ClientTransaction,
  input: ClientInput,
  opts: DataPhaseOptions,
  lmtp: boolean,
  send: (r: Reply) => void,
): Promise<DataOutcome> {
  const going = ctx.hops.filter((h) => h.recipients.length > 0);
  const fanOut = !lmtp && going.length > 1;
  let body: BodyFile | undefined;
  // A "relayed" notification may be owed: the spool then holds it (with the headers it quotes) before the 250.
  if (fanOut || (!lmtp && going.some((h) => owedRelayed(ctx, h).length > 0))) {
    try {
      // Before DATA upstream: a spool that cannot be written must not leave hops inside DATA.
      body = await opts.spool!.store.newBody();
    } catch (err) {
      say('error', `${opts.listener}: spool: ${String(err)}`);
      return {
        verdicts: new Map(),
        ended: new Set(),
        once: reply(451, '4.3.0', 'cannot write to the spool; try again later'),
        fatal: false,
      };
    }
  }
  let held = false;
  try {
    const opened = await Promise.all(
      going.map(async (h) => {
        const r = await upstreamReply(h, h.upstream!, h.upstream!.command('DATA'));
        // DATA gets 354, or a refusal; a 2xx here would tell the client its message was taken.
        return r.code < 400 && r.code !== 354 ? outOfProtocol(h, h.upstream!, 'DATA', r.code) : r;
      }),
    );
    const verdicts = new Map(going.map((h, i) => [h, opened[i]]));
    const targets = going.filter((h) => verdicts.get(h)!.code === 354);
    if (targets.length === 0) return { verdicts, ended: new Set(), once: worst(opened), fatal: false };
    send(reply(354, '', 'End data with <CR><LF>.<CR><LF>'));
    const relayed = await relayMessage(
      input,
      targets.map((h) => ({ upstream: h.upstream!, tx: h })),
      opts,
      opts.replyMs,
      body ? { sink: body, commitFirst: true } : {},
    );
    for (const [i, h] of targets.entries()) verdicts.set(h, relayed.replies[i]);
    const ended = new Set(targets);
    // A fatal end (the client timed out or went) is one reply; LMTP tells each recipient its hop's verdict.
    if (relayed.fatal || lmtp)
      return { verdicts, ended, once: lmtp && !relayed.fatal ? undefined : relayed.replies[0], fatal: relayed.fatal };
    const took = going.filter((h) => is2xx(verdicts.get(h)!));
    if (took.length === 0) return { verdicts, ended, once: worst(going.map((h) => verdicts.get(h)!)), fatal: false };
    const owed = took.some((h) => owedRelayed(ctx, h).length > 0);
    if (took.length === going.length && !owed) return { verdicts, ended, once: verdicts.get(took[0]), fatal: false };
    held = await hold(ctx, going, verdicts, body!, opts);
    // Not held: a 4xx, and the hops that took it get it again (a duplicate, never a loss).
    const once = held ? verdicts.get(took[0]) : reply(451, '4.3.0', 'cannot hold the message for every recipient; try again later');
    return { verdicts, ended, once, fatal: false };
  } finally {
    if (!held) await body?.discard();
  }
}

/** The mixed case: the message on disk for the failed hops' recipients, before the client's 250. */
async function hold(
  ctx: ClientTransaction,
  going: Transaction[],
  verdicts: Map<Transaction, Reply>,
  body: BodyFile,
  opts: DataPhaseOptions,
): Promise<boolean> {
  const failed = going.filter((h) => !is2xx(verdicts.get(h)!));
  const entry = (h: Transaction, i: number, state: SpoolRecipient['state']): SpoolRecipient => {
    const d = h.rcptDsn[i];
    return {
      address: h.recipients[i],
      state,
      reply: replyText(verdicts.get(h)!),
      by: h.upstream?.label ?? opts.hostname,
      attempts: 1,
      ...(d ? { dsn: { words: d.words, ...(d.notify ? { notify: d.notify } : {}), ...(d.orcpt ? { orcpt: d.orcpt } : {}) } } : {}),
    };
  };
  const recipients = [
    ...failed.flatMap((h) => h.recipients.map((_, i) => entry(h, i, verdicts.get(h)!.code >= 500 ? 'failed' : 'pending'))),
    ...going.filter((h) => is2xx(verdicts.get(h)!)).flatMap((h) => owedRelayed(ctx, h).map((i) => entry(h, i, 'relayed'))),
  ];
  const env = ctx.envelope;
  try {
    const entry = await opts.spool!.hold(
      body,
      {
        from: env.from.address,
        smtputf8: env.smtputf8,
        ...(env.body ? { body: env.body } : {}),
        ...(env.requireTls ? { requireTls: true } : {}),
        ...(env.tlsRequiredNo ? { tlsRequiredNo: true } : {}),
        ...(env.dsn ? { dsn: env.dsn } : {}),
      },
      recipients,
    );
    for (const h of failed) h.spooled = entry.id;
    for (const h of going) {
      const local = owedRelayed(ctx, h).length;
      if (local > 0 && is2xx(verdicts.get(h)!)) (h.dsnCount ??= { passedOn: 0, local: 0 }).local += local;
    }
    return true;
  } catch (err) {
    say('error', `${opts.listener}: spool: cannot hold a message (the client is told 451 and will send it again): ${String(err)}`);
    return false;
  }
}

/**
 * The recipients (indexes) of a hop that lacks DSN whose NOTIFY asks for SUCCESS: once the hop takes
 * the message, ticketbooth owes each a "relayed" notification (RFC 3461 6.2). None for the null sender.
 */
function owedRelayed(ctx: ClientTransaction, h: Transaction): number[] {
  if (ctx.envelope.from.address === '' || h.upstream?.extensions.has('DSN') !== false) return [];
  return h.rcptDsn.flatMap((d, i) => (wants(d, 'SUCCESS') ? [i] : []));
}

function is2xx(r: Reply): boolean {
  return r.code >= 200 && r.code < 300;
}

/** The reply the client hears for a message no hop took: a 4xx if any hop's failure was temporary, so nothing is lost. */
function worst(replies: Reply[]): Reply {
  return replies.find((r) => r.code >= 400 && r.code < 500) ?? replies[0];
}

/** A reply as one line, for the notification's Diagnostic-Code. */
function replyText(r: Reply): string {
  return isLocal(r) ? `${r.code} ${r.enhanced ? r.enhanced + ' ' : ''}${r.text}` : `${r.code} ${r.lines.join(' ')}`;
}
