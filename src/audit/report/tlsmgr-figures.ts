import * as z from 'zod';
import { tlsmgrLookupEventSchema, tlsmgrUpdateEventSchema } from '../events.js';

/**
 * tlsmgr mode's records (`ticketbooth tlsmgr`: Postfix's own session cache), as the report reads
 * them: what each lookup vended, what each update stored, and whether any ticket was vended fresh
 * twice (a single-use violation that no re-offer explains).
 */

const l = tlsmgrLookupEventSchema.shape;
const u = tlsmgrUpdateEventSchema.shape;

export const tlsmgrLookupRecordSchema = z.object({
  event: l.event,
  destination: l.destination.catch(''),
  vended: z.string().catch('none'),
  reoffered: l.reoffered.catch(false),
  ticketHash: l.ticketHash.catch(undefined),
  error: l.error.catch(undefined),
  time: l.time.catch(undefined),
});
export const tlsmgrUpdateRecordSchema = z.object({
  event: u.event,
  destination: u.destination.catch(''),
  result: z.string().catch('failed'),
  version: z.string().optional().catch(undefined),
  time: u.time.catch(undefined),
});
export type TlsmgrLookupRecord = z.output<typeof tlsmgrLookupRecordSchema>;
export type TlsmgrUpdateRecord = z.output<typeof tlsmgrUpdateRecordSchema>;

export interface TlsmgrValues {
  lookups: number;
  /** What the lookups handed Postfix: `tls13-ticket` (fresh), `tls13-reoffered`, `tls12-session`, `none`, `error`. */
  vended: Record<string, number>;
  /** Updates by result (`stored`, `not-resumable`, `unreadable`, `failed`); TLS 1.3 ones among the stored. */
  updates: Record<string, number>;
  storedTls13: number;
  /** Tickets vended fresh more than once: single-use violations not explained by adaptive reuse. */
  vendedTwice: number;
}

/** Fresh vends remembered to find a repeat; past this many the oldest are forgotten (bounded memory). */
const MAX_HASHES = 200_000;

export class TlsmgrStats {
  private readonly v: TlsmgrValues = { lookups: 0, vended: {}, updates: {}, storedTls13: 0, vendedTwice: 0 };
  private readonly fresh = new Set<string>();

  addLookup(r: TlsmgrLookupRecord): void {
    this.v.lookups++;
    const kind = r.error !== undefined ? 'error' : r.vended === 'tls13-ticket' && r.reoffered ? 'tls13-reoffered' : r.vended;
    this.v.vended[kind] = (this.v.vended[kind] ?? 0) + 1;
    if (r.vended !== 'tls13-ticket' || r.reoffered || r.ticketHash === undefined) return;
    if (this.fresh.has(r.ticketHash)) this.v.vendedTwice++;
    else {
      if (this.fresh.size >= MAX_HASHES) this.fresh.delete(this.fresh.values().next().value!);
      this.fresh.add(r.ticketHash);
    }
  }

  addUpdate(r: TlsmgrUpdateRecord): void {
    this.v.updates[r.result] = (this.v.updates[r.result] ?? 0) + 1;
    if (r.result === 'stored' && r.version === 'TLSv1.3') this.v.storedTls13++;
  }

  values(): TlsmgrValues {
    return { ...this.v, vended: { ...this.v.vended }, updates: { ...this.v.updates } };
  }
}

/** The text report's lines for tlsmgr mode (none when the logs hold no tlsmgr record). */
export function tlsmgrLines(t: TlsmgrValues & { destinations: Array<{ destination: string } & TlsmgrValues> }): string[] {
  if (t.lookups === 0 && Object.keys(t.updates).length === 0) return [];
  const entries = (o: Record<string, number>): string =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const offered = t.lookups - (t.vended.none ?? 0) - (t.vended.error ?? 0);
  const share = t.lookups ? ` (${Math.round((100 * offered) / t.lookups)}% had a session to offer)` : '';
  const out = [
    "tlsmgr mode (Postfix's session cache)",
    `  lookups: ${t.lookups}${share}: ${entries(t.vended)}`,
    `  updates: ${entries(t.updates)}; TLS 1.3 tickets stored ${t.storedTls13}`,
    `  tickets vended fresh twice: ${t.vendedTwice}`,
  ];
  for (const d of t.destinations.slice(0, 10)) out.push(`    ${d.destination}: ${d.lookups} lookups (${entries(d.vended)})`);
  return out;
}
