import type { AuditLog } from '../audit/audit-log.js';
import type { DaneAudit, StsAudit, UpstreamErrorEvent } from '../audit/events.js';
import { resultTypeOf } from '../mta-sts/result-type.js';
import { isBeforeTls, type UpstreamError } from '../errors/index.js';
import { msSince } from '../util/elapsed.js';
import { oneLine } from '../util/text.js';
import { daneResultOf } from './dane-check.js';
import { errorCodeOf } from './error-code.js';

export interface Attempt {
  listener: string;
  /** host:port, as the dialer writes it in `tls.handshake`. */
  destination: string;
  /** `performance.now()` when the attempt began. */
  started: number;
  cleartextFallback?: boolean;
  /** Under an MTA-STS policy: the line's `sts`, its `result` filled from the error. */
  sts?: StsAudit;
  /** Under a DANE level: the host's decision, its `result` filled from the error. */
  dane?: DaneAudit;
  /** Once connected: our address and the server's EHLO name (TLS-RPT's sending-mta-ip and receiving-mx-helo). */
  sendingIp?: string;
  ehloName?: string;
}

/**
 * Writes the `upstream.error` line for one attempt that failed before TLS, at the error's stage
 * (a later failure is told elsewhere: nothing is written). The text is the error's message (ours
 * name host:port and at most an SMTP reply's first 200 characters, never anything the client
 * sent), on one line.
 */
export function recordUpstreamError(audit: AuditLog, attempt: Attempt, err: UpstreamError): void {
  if (!isBeforeTls(err.stage)) return;
  const event: UpstreamErrorEvent = {
    event: 'upstream.error',
    listener: attempt.listener,
    destination: attempt.destination,
    stage: err.stage,
    errorCode: errorCodeOf(err),
    error: oneLine(err.message),
    ms: msSince(attempt.started),
    ...(attempt.cleartextFallback ? { cleartextFallback: true } : {}),
    ...(attempt.sts ? { sts: { ...attempt.sts, result: resultTypeOf(errorCodeOf(err)) } } : {}),
    ...(attempt.dane ? { dane: { ...attempt.dane, result: daneResultOf(attempt.dane, errorCodeOf(err)) } } : {}),
    ...(attempt.sendingIp ? { sendingIp: attempt.sendingIp } : {}),
    ...(attempt.ehloName ? { ehloName: attempt.ehloName } : {}),
  };
  audit.record(event);
}
