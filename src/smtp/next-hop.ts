import { UpstreamError, type UpstreamStage } from '../errors/index.js';
import { SmtpClient } from '../upstream/smtp-client/client.js';
import type { DialContext } from '../upstream/tls-dialer.js';
import { reply, type LocalReply, type Reply } from './replies.js';
import type { Route } from './routing.js';
import { tlsRequired, tlsTargetFor, type HopIdentity } from './tls-policy.js';
import { hopFailureReply } from './upstream-replies.js';

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

/** Why a host could not be used: what the client hears, and whether another MX host may do better. */
export interface HopFailure {
  error: UpstreamError;
  reply: LocalReply;
  tryNext: boolean;
}

/** What opening a host takes from the route: its TLS policy and credentials. */
type HopRoute = Pick<Route, 'tls' | 'auth'>;

/** Stages whose failure TLS level `may` answers with a cleartext retry (as Postfix does). */
const TLS_STAGES: ReadonlySet<UpstreamStage> = new Set(['starttls', 'injection', 'tls']);

/**
 * The hosts in order; the first that takes the connection (and TLS as the policy demands) wins.
 * Each host gets `setupMs` at most, and no host is tried once the RCPT budget is spent.
 */
export async function connectFirst(
  candidates: HopIdentity[],
  route: HopRoute,
  opts: UpstreamOptions,
  budgetEnd: number,
): Promise<SmtpClient | Reply> {
  let last: HopFailure | undefined;
  for (const c of candidates) {
    const now = performance.now();
    if (now >= budgetEnd) {
      const why = last ? `; last: ${last.reply.text}` : '';
      return reply(451, '4.4.1', `no next hop ready within ${opts.rcptBudgetMs / 1000}s${why}`);
    }
    const opened = await openNextHop(c, route, opts, Math.min(now + opts.setupMs, budgetEnd));
    if (opened instanceof SmtpClient) return opened;
    last = opened;
    if (!opened.tryNext) break;
  }
  return last?.reply ?? reply(451, '4.4.1', 'no next hop to try');
}

/**
 * One host under the TLS policy, ready for MAIL: greeting, EHLO, STARTTLS (through `dialTls`, so the
 * resumption cache and the `tls.handshake` line apply), EHLO again inside TLS, AUTH only inside
 * TLS. Level `may` retries once in cleartext after a failed STARTTLS or handshake; that attempt's
 * own `upstream.error` is marked `cleartextFallback`. `deadline` (a `performance.now()` time) ends
 * the host's setup, the cleartext retry included.
 */
export async function openNextHop(
  hop: HopIdentity,
  route: HopRoute,
  opts: UpstreamOptions,
  deadline: number,
): Promise<SmtpClient | HopFailure> {
  const level = route.tls.level;
  const first = await openOnce(hop, route, opts, deadline, level !== 'none');
  if (first instanceof SmtpClient || level !== 'may' || !TLS_STAGES.has(first.error.stage)) return first;
  return openOnce(hop, route, opts, deadline, false, true);
}

async function openOnce(
  hop: HopIdentity,
  { tls: policy, auth }: HopRoute,
  opts: UpstreamOptions,
  deadline: number,
  startTls: boolean,
  cleartextFallback = false,
): Promise<SmtpClient | HopFailure> {
  const within = (ms: number): number => Math.max(1, Math.min(ms, deadline - performance.now()));
  const label = hop.hostName === hop.connect ? `${hop.connect}:${hop.port}` : `${hop.hostName}[${hop.connect}]:${hop.port}`;
  const required = tlsRequired(policy.level);
  // HELO's reply lists no extensions: no STARTTLS, no AUTH. Fall back to it only when neither is needed.
  const ehloRequired = required || auth !== undefined;
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect(hop.connect, hop.port, {
      label,
      connectMs: within(opts.connectMs),
      replyMs: opts.replyMs,
      dataDoneMs: opts.dataDoneMs,
      setupDeadline: deadline,
      report: { ...opts.dial, cleartextFallback },
    });
    await client.greeting();
    await client.hello(opts.heloName, { heloFallback: !ehloRequired });
    if (startTls && (required || client.extensions.has('STARTTLS'))) {
      await client.startTls(tlsTargetFor(policy, hop, client.ehloName)!, { ...opts.dial, handshakeTimeoutMs: within(opts.connectMs) });
      await client.hello(opts.heloName);
    }
    if (auth) await client.authenticate(auth);
    return client;
  } catch (err) {
    client?.abort();
    if (!(err instanceof UpstreamError)) throw err;
    return {
      error: err,
      reply: hopFailureReply(err, label, { ehloRequired, secure: client?.secure ?? false }),
      tryNext: err.code !== 'ERR_AUTH_FAILED',
    };
  }
}
