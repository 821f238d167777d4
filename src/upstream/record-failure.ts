import type { AuditLog } from '../audit/audit-log.js';
import type { UpstreamErrorEvent, UpstreamErrorStage } from '../audit/events.js';
import { errorCodeOf } from './error-code.js';

export interface FailedAttempt {
  listener: string;
  /** host:port, as the dialer writes it in `tls.handshake`. */
  destination: string;
  stage: UpstreamErrorStage;
  /** `performance.now()` when the attempt began. */
  started: number;
  cleartextFallback?: boolean;
}

/**
 * Writes the `upstream.error` line for one attempt that failed before TLS. The text is the
 * error's message (ours name host:port and at most an SMTP reply's first 200 characters, never
 * anything the client sent), on one line.
 */
export function recordUpstreamError(audit: AuditLog, attempt: FailedAttempt, err: unknown): void {
  const event: UpstreamErrorEvent = {
    event: 'upstream.error',
    listener: attempt.listener,
    destination: attempt.destination,
    stage: attempt.stage,
    errorCode: errorCodeOf(err),
    error: (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' ').slice(0, 300),
    ms: Math.round((performance.now() - attempt.started) * 100) / 100,
    ...(attempt.cleartextFallback ? { cleartextFallback: true } : {}),
  };
  audit.record(event);
}
