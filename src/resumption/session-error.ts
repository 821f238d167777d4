import { TicketboothError } from '../errors/index.js';

/** Why a session buffer could not be read: a stable word for metrics, the audit report and stderr. */
export type UnreadableReason = 'unknown-envelope' | 'truncated-envelope' | 'malformed-der';

export class SessionParseError extends TicketboothError {
  readonly code = 'ERR_SESSION_UNREADABLE';
  constructor(
    readonly reason: UnreadableReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}
