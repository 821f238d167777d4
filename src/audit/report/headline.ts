import { pct } from './columns.js';
import type { AuditReport } from './report.js';

/**
 * The report's first words beside the handshake count: how many messages went out and how many
 * of them needed no handshake at all. A smarthost that keeps connections open hands most
 * messages to a cached connection, so the handshake count alone undersells (or hides) its work.
 */

/** SMTP transactions relayed to a next hop, and those that rode a cached connection (no connect, no handshake). */
function messageFigures(smtp: AuditReport['overall']['smtp']): { messages: number; onCachedConnection: number } {
  return {
    messages: smtp.byNextHop.reduce((n, h) => n + h.transactions, 0),
    onCachedConnection: smtp.byNextHop.reduce((n, h) => n + h.reused, 0),
  };
}

/** `12 messages relayed (58.3% on a cached connection)`; nothing for a log without SMTP transactions. */
export function messagesHeadline(smtp: AuditReport['overall']['smtp']): string | undefined {
  const { messages, onCachedConnection } = messageFigures(smtp);
  if (messages === 0) return undefined;
  const share = pct(onCachedConnection / messages, '');
  return `${messages} message${messages === 1 ? '' : 's'} relayed (${share} on a cached connection)`;
}

/** A bucket width for a person: `1 s`, `5 min`, `3 h`, `1 d`. */
export function widthText(seconds: number): string {
  for (const [unit, s] of [
    ['d', 86_400],
    ['h', 3600],
    ['min', 60],
  ] as const)
    if (seconds >= s && seconds % s === 0) return `${seconds / s} ${unit}`;
  return `${seconds} s`;
}
