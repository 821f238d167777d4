import { say } from '../util/operator-log.js';
import type { UnreadableReason } from './session-error.js';

const warned = new Set<UnreadableReason>();

/**
 * Says on stderr, once per process and reason, that sessions cannot be read: resumption is then
 * off for every destination that sends them, which no error would otherwise show. The runtime and
 * OpenSSL versions are in the line because a runtime change is the likely cause (Node 22's envelope).
 */
export function warnUnreadableOnce(reason: UnreadableReason, destination: string): void {
  if (warned.has(reason)) return;
  warned.add(reason);
  say(
    'warn',
    `cannot read a TLS session from ${destination} (${reason}) on Node ${process.version}, ` +
      `OpenSSL ${process.versions.openssl}: such sessions are not kept, so those handshakes are full; ` +
      `see ticketbooth_sessions_unreadable_total and ticketsUnreadable in the audit log`,
  );
}
