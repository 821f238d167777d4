import { entries } from './columns.js';
import type { SmtpRecord } from './record-schemas.js';

/**
 * What clients asked of the SMTP front beyond relaying, per next hop, from the `smtp.transaction`
 * lines: DSN requests (RFC 3461) given to a hop that announces DSN or answered by ticketbooth with a
 * "relayed" notice; REQUIRETLS (RFC 8689) passed on, or why it was refused with 5.7.30; messages
 * sent with the recipient domain's policies set aside on the client's word (TLS-Required: No).
 */
export interface SmtpRequestValues {
  /** Transactions that asked any of the below. */
  transactions: number;
  /** Recipients with NOTIFY/ORCPT: `passedOn` to a hop announcing DSN, `local` answered by ticketbooth. */
  dsn: { passedOn: number; local: number };
  /** REQUIRETLS transactions by outcome: `passed-on`, `not-found-securely`, `not-authenticated`, `not-announced`. */
  requireTls: Record<string, number>;
  /** TLS-Required: No transactions by the policies set aside (`mta-sts+dane`, `mta-sts`, `none`). */
  policyBypass: Record<string, number>;
}

export interface SmtpRequestsReport extends SmtpRequestValues {
  byNextHop: Array<{ nextHop: string } & SmtpRequestValues>;
}

/** Where lines without a next hop (the client left before any RCPT was tried) are counted. */
const NO_HOP = '(no next hop)';

/** Bounded like the report's other per-destination maps: past `maxHops`, further hops are pooled under `pooled`. */
export class SmtpRequestStats {
  private readonly byHop = new Map<string, SmtpRequestValues>();

  constructor(
    private readonly maxHops: number,
    private readonly pooled: string,
  ) {}

  add(r: Pick<SmtpRecord, 'nextHop' | 'dsn' | 'requireTls' | 'policyBypass'>): void {
    if (!r.dsn && !r.requireTls && !r.policyBypass) return;
    const hop = r.nextHop ?? NO_HOP;
    const key = this.byHop.has(hop) || this.byHop.size < this.maxHops ? hop : this.pooled;
    let v = this.byHop.get(key);
    if (v === undefined) this.byHop.set(key, (v = empty()));
    v.transactions++;
    if (r.dsn) {
      v.dsn.passedOn += r.dsn.passedOn;
      v.dsn.local += r.dsn.local;
    }
    if (r.requireTls) increment(v.requireTls, r.requireTls);
    if (r.policyBypass) increment(v.policyBypass, r.policyBypass.ignored.join('+') || 'none');
  }

  /** The report's section, busiest hop first; undefined when no line asked anything. */
  report(): SmtpRequestsReport | undefined {
    if (this.byHop.size === 0) return undefined;
    const all = empty();
    for (const v of this.byHop.values()) merge(all, v);
    const byNextHop = [...this.byHop]
      .map(([nextHop, v]) => ({ nextHop, ...v }))
      .sort((a, b) => b.transactions - a.transactions || a.nextHop.localeCompare(b.nextHop));
    return { ...all, byNextHop };
  }
}

/** The text report's lines: the totals, then up to `maxHops` next hops. */
export function smtpRequestLines(r: SmtpRequestsReport, maxHops = 10): string[] {
  const out = ['', 'DSN, REQUIRETLS and TLS-Required: No (SMTP transactions that asked them)', `  overall: ${valuesText(r)}`];
  for (const h of r.byNextHop.slice(0, maxHops)) out.push(`  to ${h.nextHop}: ${valuesText(h)}`);
  if (r.byNextHop.length > maxHops) out.push(`  ... and ${r.byNextHop.length - maxHops} more next hops (--format json lists them all)`);
  return out;
}

function valuesText(v: SmtpRequestValues): string {
  const parts: string[] = [];
  if (v.dsn.passedOn + v.dsn.local > 0) parts.push(`DSN requests ${v.dsn.passedOn} passed on, ${v.dsn.local} answered by ticketbooth`);
  if (Object.keys(v.requireTls).length > 0) parts.push(`REQUIRETLS ${entries(v.requireTls)}`);
  if (Object.keys(v.policyBypass).length > 0) parts.push(`TLS-Required: No, set aside: ${entries(v.policyBypass)}`);
  return parts.join('; ');
}

function empty(): SmtpRequestValues {
  return { transactions: 0, dsn: { passedOn: 0, local: 0 }, requireTls: {}, policyBypass: {} };
}

function merge(into: SmtpRequestValues, v: SmtpRequestValues): void {
  into.transactions += v.transactions;
  into.dsn.passedOn += v.dsn.passedOn;
  into.dsn.local += v.dsn.local;
  for (const [k, n] of Object.entries(v.requireTls)) into.requireTls[k] = (into.requireTls[k] ?? 0) + n;
  for (const [k, n] of Object.entries(v.policyBypass)) into.policyBypass[k] = (into.policyBypass[k] ?? 0) + n;
}

function increment(m: Record<string, number>, key: string): void {
  m[key] = (m[key] ?? 0) + 1;
}
