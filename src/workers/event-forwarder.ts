import type { AuditLog } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/events.js';
import { say } from '../util/operator-log.js';
import type { Channel } from './channel.js';
import type { PrimaryMethods, WorkerMethods } from './protocol.js';

/** Events gathered before they go to the primary together, and how long at most. */
const BATCH_EVENTS = 256;
const BATCH_MS = 100;
/** Batches sent and not yet taken by the channel, at most: past it the primary is not keeping up. */
const MAX_IN_FLIGHT = 64;
const NOTICE_EVERY_MS = 60_000;

export interface EventForwarder {
  /** Sends what is gathered now; resolves once the channel has taken it (a worker's exit). */
  flush(): Promise<void>;
  /** Events dropped so far because the primary did not take them (counted in its metrics). */
  dropped(): number;
}

/**
 * Hands a worker's audit events to the primary, which writes the one audit file (whole lines, one
 * writer) and counts them in the one set of metrics. Memory stays bounded if the primary falls
 * behind: beyond MAX_IN_FLIGHT batches, events are dropped, counted and said.
 */
export function forwardEvents(audit: AuditLog, primary: Channel<WorkerMethods, PrimaryMethods>): EventForwarder {
  let batch: AuditEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  let dropped = 0;
  let noticed = 0;
  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    if (batch.length === 0) return Promise.resolve();
    const lines = batch;
    batch = [];
    if (inFlight >= MAX_IN_FLIGHT) {
      dropped += lines.length;
      if (Date.now() - noticed > NOTICE_EVERY_MS) {
        noticed = Date.now();
        say('error', `worker ${process.pid}: the primary is not taking audit events; ${dropped} dropped so far`);
      }
      return Promise.resolve();
    }
    inFlight++;
    return primary.note('events', lines).finally(() => inFlight--);
  };
  audit.on('event', (e) => {
    batch.push(e);
    if (batch.length >= BATCH_EVENTS) void flush();
    else timer ??= setTimeout(() => void flush(), BATCH_MS);
  });
  return { flush, dropped: () => dropped };
}
