import type { HandshakeValues } from './handshake-figures.js';
import type { Verdict } from './verdicts.js';

/**
 * What to change for a destination, when its figures support it (docs/audit.md, "Verdicts"): one
 * sentence each, the one that explains the others first; none when nothing would help or too
 * little was seen. Read from the same figures as the verdict, so the two never disagree.
 */
export function recommendationsOf(s: HandshakeValues, v: Verdict): string[] {
  const out: string[] = [];
  if (s.ticketsUnreadable > 0)
    out.push(
      'run ticketbooth on a Node.js runtime whose sessions it can read (stderr names the reason): until then every handshake is full',
    );
  if (atSingleUseCeiling(s, v)) {
    const why = v.reusedTickets === 'accepted' ? 'it accepts a reused ticket' : 'adaptive reuse stops there after one refusal';
    out.push(`no renewal on resumption keeps it at its single-use ceiling: try \`cache.reuse: adaptive\` (${why})`);
  }
  const c = s.fullByCause;
  if (frequent(c['version-mismatch'], s.full))
    out.push(
      `${c['version-mismatch']} of ${s.full} full handshakes offered the other TLS version's session: a balancer over TLS 1.2 and 1.3 nodes; one version on all of them makes those resumable`,
    );
  // Refusals adaptive reuse asked for are its test, not the server forgetting tickets.
  const refused = c.refused - s.adaptiveReuse.refused;
  if (frequent(refused, s.full))
    out.push(
      `${refused} of ${s.full} full handshakes were refused tickets: the server loses its ticket keys (rotation, restarts, or nodes without a shared key); a shared, longer-lived key would resume them`,
    );
  return out;
}

/**
 * Strict single use is what holds it back: it does not renew, resumes about as often as k/(k+1)
 * allows, has not refused reused tickets, and adaptive reuse is not on there already.
 */
function atSingleUseCeiling(s: HandshakeValues, v: Verdict): boolean {
  if (v.renews !== 'no' || v.ceiling === null || v.ceiling >= 1 || s.resumedShare === null) return false;
  return v.reusedTickets !== 'refused' && s.adaptiveReuse.reoffered === 0 && s.resumedShare >= v.ceiling - CEILING_SLACK;
}

/** Within this much of the ceiling counts as at it (a first contact, an expiry, pull a share down). */
const CEILING_SLACK = 0.1;

/** At least 3, and a quarter of the full handshakes: a habit, not an accident. */
function frequent(n: number, full: number): boolean {
  return n >= 3 && n * 4 >= full;
}
