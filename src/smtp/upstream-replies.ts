import { UpstreamError } from '../errors/index.js';
import type { SmtpClient } from '../upstream/smtp-client/client.js';
import type { SmtpReply } from '../upstream/smtp-client/reply-reader.js';
import { reply, type LocalReply, type Reply } from './replies.js';

// What the client hears for what a next hop did. Every doubt is a 4xx, so the client keeps the
// mail: a next hop that failed, or answered out of protocol, may do better later.

/**
 * A next hop that could not be used. `ehloRequired`: EHLO could not fall back to HELO (TLS
 * required, or AUTH); `secure`: the failure came inside TLS.
 */
export function hopFailureReply(err: UpstreamError, label: string, ctx: { ehloRequired: boolean; secure: boolean }): LocalReply {
  if (err.stage === 'connect') return reply(451, '4.4.1', `cannot connect to ${label}`);
  if (err.stage === 'tls') return reply(451, '4.7.5', `TLS with ${label} failed: ${err.message}`);
  switch (err.code) {
    case 'ERR_SMTP_GREETING':
      return reply(451, '4.4.1', `${label} greeted with ${err.replyCode}`);
    case 'ERR_SMTP_PROTOCOL':
      if (ctx.secure) return reply(451, '4.4.1', `${label} refused EHLO inside TLS`);
      if (ctx.ehloRequired) return reply(451, '4.7.4', `${label} refused EHLO; TLS is required`);
      return reply(451, '4.4.1', `${label} refused HELO`);
    case 'ERR_NO_STARTTLS':
      return reply(451, '4.7.4', `TLS is required, but ${label} does not offer STARTTLS`);
    case 'ERR_STARTTLS_REFUSED':
      return reply(451, '4.7.5', `${label} refused STARTTLS`);
    case 'ERR_STARTTLS_INJECTION':
      return reply(451, '4.7.5', `${label} failed the STARTTLS injection check`);
    case 'ERR_AUTH_NEEDS_TLS':
      return reply(451, '4.7.0', `AUTH to ${label} needs TLS, which it did not get`);
    case 'ERR_AUTH_NO_MECHANISM':
      return reply(451, '4.7.0', `${label} offers no usable AUTH mechanism`);
    case 'ERR_AUTH_FAILED':
      return reply(451, '4.7.0', `AUTH to ${label} failed with ${err.replyCode}`);
    default:
      return lostReply(err, label);
  }
}

/** A reply that never came: the next hop timed out, or the connection is gone or out of step. */
function lostReply(err: UpstreamError, label: string): LocalReply {
  return reply(451, '4.4.2', err.code === 'ERR_SMTP_TIMEOUT' ? `${label} timed out` : `lost the connection to ${label}`);
}

/** A command of the transaction failed (the connection is given up): the reason goes in the audit line. */
export function transactionFailed(tx: { error?: string }, err: unknown, upstream: SmtpClient): LocalReply {
  if (!(err instanceof UpstreamError)) throw err;
  tx.error = err.message;
  return lostReply(err, upstream.label);
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
