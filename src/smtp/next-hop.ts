import type { DaneAudit, StsAudit } from '../audit/events.js';
import { UpstreamError, type UpstreamStage } from '../errors/index.js';
import { resultTypeOf } from '../mta-sts/result-type.js';
import { deferralText } from '../dane/decision.js';
import { DaneError, daneAuditOf, daneResultOf } from '../upstream/dane-check.js';
import { errorCodeOf } from '../upstream/error-code.js';
import type { UpstreamTls } from '../upstream/tls-dialer.js';
import { stsApplied, stsAuditOfHop } from './sts-routing.js';
import { SmtpClient } from '../upstream/smtp-client/client.js';
import type { DialContext } from '../upstream/tls-dialer.js';
import { reply, type LocalReply, type Reply } from './replies.js';
import type { Route } from './routing.js';
import { hostLevel, tlsRequired, tlsTargetFor, type HopIdentity, type HostLevel } from './tls-policy.js';
import { requireTlsBlock } from './requiretls.js';
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
  /** Under a DANE level: the host's decision, and the handshake's verdict if there was one. */
  dane?: DaneAudit;
  /** Under an MTA-STS policy: the host's `sts`, its result this failure. */
  sts?: StsAudit;
}

/** No host took the transaction: the client's reply, and the DANE and MTA-STS verdicts of the last host tried. */
export interface NoHop {
  reply: Reply;
  dane?: DaneAudit;
  sts?: StsAudit;
}

/** What opening a host takes from the route: its TLS policy and credentials. */
type HopRoute = Pick<Route, 'mode' | 'tls' | 'auth'>;

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
): Promise<SmtpClient | NoHop> {
  let last: HopFailure | undefined;
  for (const c of candidates) {
    const now = performance.now();
    if (now >= budgetEnd) {
      const why = last ? `; last: ${last.reply.text}` : '';
      return { reply: reply(451, '4.4.1', `no next hop ready within ${opts.rcptBudgetMs / 1000}s${why}`), ...daneOf(last) };
    }
    const opened = await openNextHop(c, route, opts, Math.min(now + opts.setupMs, budgetEnd));
    if (opened instanceof SmtpClient) return opened;
    last = opened;
    if (!opened.tryNext) break;
  }
  return last ? { reply: last.reply, ...daneOf(last) } : { reply: reply(451, '4.4.1', 'no next hop to try') };
}

function daneOf(f: HopFailure | undefined): { dane?: DaneAudit; sts?: StsAudit } {
  return { ...(f?.dane ? { dane: f.dane } : {}), ...(f?.sts ? { sts: f.sts } : {}) };
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
  const level = hostLevel(route.tls, hop);
  if (level === 'defer') return daneDeferred(hop);
  const first = await openOnce(hop, level, route, opts, deadline, level !== 'none');
  if (first instanceof SmtpClient || level !== 'may' || !TLS_STAGES.has(first.error.stage)) return first;
  return openOnce(hop, level, route, opts, deadline, false, true);
}

/** A host DNSSEC rules out (a failed TLSA lookup, or no usable TLSA under `dane-only`): not even connected to. */
function daneDeferred(hop: HopIdentity): HopFailure {
  const label = `${hop.hostName}[${hop.connect}]:${hop.port}`;
  const dane = hop.dane ? daneAuditOf(hop.dane, [hop.hostName, hop.nextHop]) : undefined;
  if (dane) dane.result = daneResultOf(dane);
  const why = hop.dane ? deferralText(hop.dane) : 'no TLSA to authenticate it';
  const error = new DaneError(`DANE ${hop.hostName}: ${why}`, 'ERR_DANE_DEFERRED', dane);
  const answer = hopFailureReply(error, label, { ehloRequired: true, secure: false });
  return { error, reply: answer, tryNext: true, ...(dane ? { dane } : {}) };
}

async function openOnce(
  hop: HopIdentity,
  level: HostLevel,
  route: HopRoute,
  opts: UpstreamOptions,
  deadline: number,
  startTls: boolean,
  cleartextFallback = false,
): Promise<SmtpClient | HopFailure> {
  const { tls: policy, auth } = route;
  const within = (ms: number): number => Math.max(1, Math.min(ms, deadline - performance.now()));
  const label = hop.hostName === hop.connect ? `${hop.connect}:${hop.port}` : `${hop.hostName}[${hop.connect}]:${hop.port}`;
  const required = tlsRequired(level);
  // HELO's reply lists no extensions: no STARTTLS, no AUTH. Fall back to it only when neither is needed.
  const ehloRequired = required || auth !== undefined;
  const stsBase = stsAuditOfHop(hop);
  const daneBase = hop.dane ? daneAuditOf(hop.dane, [hop.hostName, hop.nextHop]) : undefined;
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect(hop.connect, hop.port, {
      label,
      connectMs: within(opts.connectMs),
      replyMs: opts.replyMs,
      dataDoneMs: opts.dataDoneMs,
      setupDeadline: deadline,
      report: { ...opts.dial, cleartextFallback, ...(stsBase ? { sts: stsBase } : {}), ...(daneBase ? { dane: daneBase } : {}) },
    });
    await client.greeting();
    await client.hello(opts.heloName, { heloFallback: !ehloRequired });
    let tls: UpstreamTls | undefined;
    if (startTls && (required || client.extensions.has('STARTTLS'))) {
      tls = await client.startTls(tlsTargetFor(policy, level, hop, client.ehloName)!, {
        ...opts.dial,
        handshakeTimeoutMs: within(opts.connectMs),
      });
      await client.hello(opts.heloName);
    }
    const cleartext = tls ? undefined : cleartextFallback ? 'fallback' : startTls ? 'not-offered' : 'none';
    const trust = trustOf(hop, policy.mtaSts, tls, cleartext, tls !== undefined && requireTlsBlock(hop, route) === undefined);
    if (trust) client.trust = trust;
    if (auth) await client.authenticate(auth);
    return client;
  } catch (err) {
    client?.abort();
    if (!(err instanceof UpstreamError)) throw err;
    const dane = (err instanceof DaneError ? err.dane : undefined) ?? daneBase;
    // The result the handshake line gave too: TLS-RPT's word for the error's own code.
    const sts = stsBase ? { ...stsBase, result: resultTypeOf(errorCodeOf(err)) } : undefined;
    return {
      error: err,
      reply: hopFailureReply(err, label, { ehloRequired, secure: client?.secure ?? false }),
      tryNext: err.code !== 'ERR_AUTH_FAILED',
      ...(dane ? { dane } : {}),
      ...(sts ? { sts } : {}),
    };
  }
}

type Cleartext = NonNullable<SmtpClient['trust']>['cleartext'];

/**
 * What a connection was made under, for its transactions' audit lines and the connection cache:
 * the DANE verdict, the MTA-STS outcome (a host in cleartext under `testing` would have failed
 * with `starttls-not-supported`), what policy applied, why it is cleartext if it is, and until
 * when the DANE decision holds.
 */
function trustOf(
  hop: HopIdentity,
  mtaSts: boolean,
  tls: UpstreamTls | undefined,
  cleartext: Cleartext,
  requireTls: boolean,
): SmtpClient['trust'] {
  if (!hop.dane && !mtaSts && !cleartext && !requireTls) return undefined;
  const unsent = tls ? 'success' : 'starttls-not-supported';
  const dane = tls?.dane ?? (hop.dane ? { ...daneAuditOf(hop.dane, [hop.hostName, hop.nextHop]), result: unsent } : undefined);
  const base = stsAuditOfHop(hop);
  const sts = tls?.sts ?? (base ? { ...base, result: unsent } : undefined);
  return {
    ...(dane ? { dane } : {}),
    ...(sts ? { sts } : {}),
    ...(mtaSts ? { stsApplied: stsApplied(hop) } : {}),
    ...(cleartext ? { cleartext } : {}),
    ...(requireTls ? { requireTls: true as const } : {}),
    until: hop.dane?.until ?? Infinity,
  };
}
