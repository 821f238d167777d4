import type { AuditLog } from './audit-log.js';
import { withCertificateAdvice, type ListenerType } from '../errors/certificate-advice.js';
import { upstreamErrorCause } from './error-cause.js';
import type { AuditEvent, HandshakeEvent } from './events.js';
import { say } from '../util/operator-log.js';

/** Repeats of one listener, destination and cause within this window are counted, not printed. */
const WINDOW_MS = 60_000;
/** Distinct (listener, destination, cause) windows remembered; a flood of new destinations cannot grow it. */
const MAX_KEYS = 1000;

/**
 * One stderr line per failed upstream attempt (a handshake that failed, an `upstream.error`, a host
 * DANE ruled out) and per refused client, for a person at the terminal: the audit log is the machine record and may
 * be off or in a file. Names the listener, the destination and the cause with the error's own
 * words; a destination failing the same way again within a minute is summed up in the next line.
 * A certificate's failure names the setting to change, as the listener's type spells it (`typeOf`).
 * Returns the unsubscribe.
 */
export function noticeFailures(
  audit: AuditLog,
  write: (line: string) => void = (l) => say('warn', l),
  typeOf: (listener: string) => ListenerType | undefined = () => undefined,
): () => void {
  const windows = new Map<string, { until: number; suppressed: number }>();
  const say = (key: string, line: string): void => {
    const now = Date.now();
    const w = windows.get(key);
    if (w && now < w.until) {
      w.suppressed++;
      return;
    }
    const more = w?.suppressed ? ` (and ${w.suppressed} more like it in the last minute)` : '';
    if (windows.size >= MAX_KEYS) windows.clear();
    windows.set(key, { until: now + WINDOW_MS, suppressed: 0 });
    write(`${line}${more}`);
  };
  const onEvent = (e: AuditEvent): void => {
    switch (e.event) {
      case 'tls.handshake':
        if (e.error === undefined) return;
        return say(
          `${e.listener}|${e.destination}|tls|${upstreamErrorCause(e)}`,
          `${e.listener}: TLS with ${e.destination} failed (${upstreamErrorCause(e)}): ${withCertificateAdvice(e.error, e.errorCode, typeOf(e.listener), checkedBy(e))}`,
        );
      case 'upstream.error':
        return say(
          `${e.listener}|${e.destination}|${e.stage}|${upstreamErrorCause(e)}`,
          `${e.listener}: ${e.destination} failed at ${e.stage} (${upstreamErrorCause(e)})${e.cleartextFallback ? ' on the cleartext retry' : ''}: ${e.error}`,
        );
      case 'smtp.transaction':
        // A host DNSSEC ruled out was never connected to: no handshake or upstream line tells it.
        if (e.dane?.applied !== 'defer') return;
        return say(
          `${e.listener}|${e.nextHop ?? ''}|dane|${e.dane.reason ?? ''}`,
          `${e.listener}: DANE deferred mail for ${e.nextHop ?? 'a next hop'} (${e.dane.reason ?? 'no usable TLSA'}, MX ${e.dane.mxDnssec}, TLSA ${e.dane.tlsa})`,
        );
      case 'client.refused':
        return say(
          `${e.listener}|${e.client.replace(/:\d+$/, '')}|refused|${e.reason}`,
          `${e.listener}: refused ${e.client} (${e.reason})`,
        );
    }
  };
  audit.on('event', onEvent);
  return () => audit.off('event', onEvent);
}

/** Whose check a handshake failed: DANE's (TLSA) or an enforced MTA-STS policy's, where no setting is the remedy. */
function checkedBy(e: HandshakeEvent): 'dane' | 'mta-sts' | undefined {
  if (e.trust?.check === 'tlsa') return 'dane';
  return e.sts?.mode === 'enforce' ? 'mta-sts' : undefined;
}
