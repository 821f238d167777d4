import { withoutNodeHint } from '../errors/certificate-advice.js';
import { upstreamFacts } from '../errors/codes.js';
import { UpstreamError } from '../errors/index.js';
import type { SmtpClient } from '../upstream/smtp-client/client.js';
import type { SmtpReply } from '../upstream/smtp-client/reply-reader.js';
import { reply, type LocalReply, type Reply } from './replies.js';

// What the client hears for what a next hop did. Every doubt is a 4xx, so the client keeps the
// mail: a next hop that failed, or answered out of protocol, may do better later.

/**
 * A next hop that could not be used, as the error table (errors/codes.ts) words it. `ehloRequired`:
 * EHLO could not fall back to HELO (TLS required, or AUTH); `secure`: the failure came inside TLS.
 */
export function hopFailureReply(err: UpstreamError, label: string, ctx: { ehloRequired: boolean; secure: boolean }): LocalReply {
  // The settings to change are for the operator's stderr (audit/failure-notices.ts), not for a reply
  // that may end in a bounce to a sender.
  const detail = withoutNodeHint(err.message);
  const r = upstreamFacts(err.code).reply({
    label,
    stage: err.stage,
    detail,
    ...ctx,
    ...(err.replyCode ? { replyCode: err.replyCode } : {}),
  });
  return reply(451, r.enhanced, r.text);
}

/** A command of the transaction failed (the connection is given up): the reason goes in the audit line. */
export function transactionFailed(tx: { error?: string }, err: unknown, upstream: SmtpClient): LocalReply {
  if (!(err instanceof UpstreamError)) throw err;
  tx.error = err.message;
  return hopFailureReply(err, upstream.label, { ehloRequired: false, secure: upstream.secure });
}

/** The reply to one command of the transaction as the client may see it, or why there is none. */
export async function upstreamReply(tx: { error?: string }, upstream: SmtpClient, pending: Promise<SmtpReply>): Promise<Reply> {
  try {
    return passable(await pending, upstream);
  } catch (err) {
    return transactionFailed(tx, err, upstream);
  }
}

/**
 * An upstream reply as the client may see it. A 421 means the next hop is closing, not us: the
 * client gets 451 and keeps its session. Codes outside 2xx-5xx are a protocol error.
 */
export function passable(r: SmtpReply, upstream: SmtpClient): Reply {
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

/** A reply the command does not allow: the connection's state is unknown, so it is dropped and the mail kept. */
export function outOfProtocol(tx: { error?: string }, upstream: SmtpClient, what: string, code: number): LocalReply {
  upstream.abort();
  tx.error = `${upstream.label} answered ${what} with ${code}`;
  return reply(451, '4.5.0', `${upstream.label} answered ${what} out of protocol`);
}
