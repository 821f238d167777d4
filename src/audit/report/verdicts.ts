import type { HandshakeValues } from './handshake-figures.js';

/**
 * What a destination's handshakes say about its ticket behaviour (resumption-facts.md):
 * - k: tickets it hands out after a full TLS 1.3 handshake (the most frequent count);
 * - renews: does a resumed handshake bring a new ticket (most of them do);
 * - reused tickets: refused (anti-replay: a ticket offered a second time got a full handshake),
 *   accepted, or untested (nothing was ever offered twice); the majority of second offers decides;
 * - ceiling: the share of connections strictly single-use tickets can resume at best: k/(k+1)
 *   when it does not renew, about 1 when it renews, 1 for TLS 1.2 (the session is multi-use).
 */
export interface Verdict {
  ticketsPerFull: number | null;
  ticketsPerResumed: number | null;
  renews: 'yes' | 'no' | 'unknown';
  reusedTickets: 'refused' | 'accepted' | 'untested';
  ceiling: number | null;
  /** Why the ceiling is what it is, in words. */
  ceilingBasis: string;
  /** The verdicts as short phrases, for the text and HTML reports. */
  phrases: string[];
}

export function verdictOf(s: HandshakeValues): Verdict {
  const k = mode(s.tls13TicketsAfterFull);
  const kResumed = mode(s.tls13TicketsAfterResumed);
  const resumed13 = total(s.tls13TicketsAfterResumed);
  const renewing = resumed13 - s.tls13TicketsAfterResumed[0];
  const renews = resumed13 === 0 ? 'unknown' : renewing * 2 > resumed13 ? 'yes' : 'no';
  // One refusal among many acceptances is a key rotation or a restart, not anti-replay.
  const refusedReuse = s.adaptiveReuse.refused + s.repeatRefused;
  const acceptedReuse = s.adaptiveReuse.resumed + s.repeatResumed;
  const reusedTickets = refusedReuse === 0 && acceptedReuse === 0 ? 'untested' : refusedReuse > acceptedReuse ? 'refused' : 'accepted';
  const tls12 = s.versions['TLSv1.2'] ?? 0;
  const tls13 = s.versions['TLSv1.3'] ?? 0;

  let ceiling: number | null = null;
  let ceilingBasis = 'no successful TLS 1.3 full handshake yet';
  if (tls12 > tls13) {
    ceiling = 1;
    ceilingBasis = 'TLS 1.2: one multi-use session';
  } else if (renews === 'yes') {
    ceiling = 1;
    ceilingBasis = 'renews on resumption: ~1';
  } else if (k !== null) {
    ceiling = k / (k + 1);
    ceilingBasis = renews === 'no' ? `k/(k+1) with k=${k}` : `k/(k+1) with k=${k}, if it does not renew (no resumption seen yet)`;
  }

  const phrases: string[] = [];
  // First: it explains every other figure (nothing kept, so nothing resumed).
  if (s.ticketsUnreadable > 0) phrases.push(`${s.ticketsUnreadable} sessions unreadable, not kept: check the Node.js runtime`);
  if (k !== null) phrases.push(`k=${k} tickets per full handshake`);
  if (renews === 'yes') phrases.push('renews on resumption');
  else if (renews === 'no') phrases.push('no renewal on resumption');
  if (reusedTickets === 'refused') phrases.push('refuses reused tickets');
  else if (reusedTickets === 'accepted') phrases.push('accepts reused tickets');
  if (tls12 > 0 && tls13 > 0) phrases.push('version-mixed (TLS 1.2 and 1.3)');
  else if (tls12 > 0) phrases.push('TLS 1.2 only: one multi-use session');
  return { ticketsPerFull: k, ticketsPerResumed: kResumed, renews, reusedTickets, ceiling, ceilingBasis, phrases };
}

/** The most frequent count (the larger on a tie); null when nothing was counted. */
function mode(counts: Uint32Array): number | null {
  let best: number | null = null;
  for (let i = 0; i < counts.length; i++) if (counts[i] > 0 && (best === null || counts[i] >= counts[best])) best = i;
  return best;
}

function total(counts: Uint32Array): number {
  let n = 0;
  for (const c of counts) n += c;
  return n;
}
