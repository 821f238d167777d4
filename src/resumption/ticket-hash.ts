import { createHash } from 'node:crypto';

/** 12 hex characters of SHA-256: enough to follow a ticket through logs, useless to an attacker. */
export function ticketHash(ticket: Buffer): string {
  return createHash('sha256').update(ticket).digest('hex').slice(0, 12);
}
