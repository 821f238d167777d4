import { smtpRequestLines } from './smtp-requests.js';
import { tlsmgrLines } from './tlsmgr-figures.js';
import {
  ceiling,
  DESTINATION_COLUMNS,
  entries,
  fixed,
  pct,
  percentiles,
  UPSTREAM_ERROR_COLUMNS,
  type Column,
  type View,
} from './columns.js';
import type { AuditReport, StatsReport } from './report.js';

const TEXT: View = { html: false, none: '-' };

/** A terminal-width summary: overall figures, then one table row per destination, busiest first. */
export function formatText(r: AuditReport): string {
  const o = r.overall;
  const out: string[] = [];
  const span = o.firstSeen ? ` from ${o.firstSeen} to ${o.lastSeen}` : '';
  out.push(`ticketbooth audit: ${plural(o.connections, 'TLS handshake')} to ${plural(o.destinations, 'destination')}${span}`);
  const i = r.input;
  out.push(
    `input: ${i.lines} lines from ${r.sources.join(', ')}; ${i.malformed} malformed, ${i.truncated} truncated, ` +
      `${i.otherEvents} of other kinds, ${i.filteredOut} filtered out`,
  );
  for (const p of i.problems) out.push(`input problem: ${p.source}: ${p.error}`);
  if (i.pooledHandshakes)
    out.push(`${i.pooledHandshakes} handshakes to destinations past --max-destinations are pooled as "(other destinations)"`);
  const f = Object.entries(r.filters).filter(([, v]) => v !== undefined);
  if (f.length) out.push(`filters: ${f.map(([k, v]) => `--${k} ${v}`).join(' ')}`);
  out.push('');
  out.push('Overall');
  out.push(...statsLines(o).map((l) => `  ${l}`));
  if (o.smtp.transactions) {
    out.push(`  SMTP transactions: ${o.smtp.transactions} (${entries(o.smtp.byClass)}); ${shareWithoutHandshake(o.smtp)}`);
    const f = o.smtp.fanOut;
    if (f)
      out.push(
        `    ${f.parts} of them parts of ${f.clientTransactions} client transactions to several next hops (by hops: ${entries(f.partsByHops)})`,
      );
    for (const h of o.smtp.byNextHop.slice(0, 10)) {
      out.push(`    to ${h.nextHop}: ${h.transactions}, ${shareWithoutHandshake(h)}`);
      if (h.dane) out.push(`      DANE: ${entries(h.dane)}`);
      if (h.sts) out.push(`      MTA-STS: ${entries(h.sts)}`);
    }
  }
  if (Object.keys(o.clientsRefused).length) out.push(`  clients refused: ${entries(o.clientsRefused)}`);
  const u = r.upstreamErrors;
  if (u.total) out.push(`  failed upstream attempts: ${u.total} by cause (${entries(u.byCause)}), by stage (${entries(u.byStage)})`);
  const v = r.destinations.map((d) => d.verdict);
  out.push(
    `  destinations: ${v.filter((x) => x.renews === 'yes').length} renew on resumption, ` +
      `${v.filter((x) => x.renews === 'no').length} do not, ${v.filter((x) => x.renews === 'unknown').length} unknown; ` +
      `${v.filter((x) => x.reusedTickets === 'refused').length} refuse reused tickets`,
  );
  const window =
    r.singleUseCheck.shortenedToSeconds !== undefined
      ? `${r.singleUseCheck.shortenedToSeconds} s (shortened from ${r.singleUseCheck.windowSeconds} s: too many tickets)`
      : `${r.singleUseCheck.windowSeconds} s`;
  out.push(`  single-use check covers offers up to ${window} apart`);
  if (r.smtpRequests) out.push(...smtpRequestLines(r.smtpRequests));
  if (r.tlsmgr) out.push('', ...tlsmgrLines(r.tlsmgr));
  if (r.destinations.length === 0) return upstreamErrorLines(r, out).join('\n') + '\n';

  out.push('');
  out.push('Destinations (handshake times in ms, p50/p95)');
  out.push(...table(DESTINATION_COLUMNS, r.destinations));
  out.push('');
  out.push('Verdicts');
  for (const d of r.destinations) {
    out.push(
      `  ${d.destination}: ${d.verdict.phrases.join('; ') || (d.connections === d.failed ? 'no successful handshake' : 'no verdict yet')}; ceiling ${ceiling(d, TEXT.none)} (${d.verdict.ceilingBasis})`,
    );
  }
  const advised = r.destinations.filter((d) => d.recommendations.length > 0);
  if (advised.length) {
    out.push('');
    out.push('Recommendations');
    for (const d of advised) out.push(...d.recommendations.map((x) => `  ${d.destination}: ${x}`));
  }
  return upstreamErrorLines(r, out).join('\n') + '\n';
}

/** Failed attempts per destination: one column per cause, then where they stopped. */
function upstreamErrorLines(r: AuditReport, out: string[]): string[] {
  if (r.upstreamErrors.destinations.length === 0) return out;
  out.push('');
  out.push('Upstream errors (failed attempts by cause; stage: tls = the handshake, others before it)');
  out.push(...table(UPSTREAM_ERROR_COLUMNS, r.upstreamErrors.destinations));
  return out;
}

function statsLines(s: StatsReport): string[] {
  const c = s.fullByCause;
  return [
    `connections ${s.connections}, resumed ${s.resumed} (${pct(s.resumedShare, TEXT.none)}), full ${s.full}, failed ${s.failed}${s.failed ? ` (${entries(s.errors)})` : ''}`,
    `full handshakes by cause: nothing offered ${c['nothing-offered']}, expired ${c.expired}, refused ${c.refused}, version mismatch ${c['version-mismatch']}${c.unknown ? `, unknown ${c.unknown}` : ''}`,
    `TLS versions: ${entries(s.versions) || 'none'}`,
    `tickets received per full handshake ${fixed(s.ticketsPerFull, TEXT.none)}, per resumed ${fixed(s.ticketsPerResumed, TEXT.none)}; unreadable, not kept ${s.ticketsUnreadable}`,
    `adaptive reuse: ${s.adaptiveReuse.reoffered} spent tickets offered again, ${s.adaptiveReuse.resumed} resumed, ${s.adaptiveReuse.refused} refused`,
    `single-use violations (a ticket offered twice): ${s.singleUseViolations.total} (adaptive reuse ${s.singleUseViolations.adaptive}, unattributed ${s.singleUseViolations.unattributed})`,
    `handshake ms: full ${percentiles(s.handshakeMs.full, TEXT)}, resumed ${percentiles(s.handshakeMs.resumed, TEXT)}`,
  ];
}

/** The columns with a text header, aligned: the first to the left, figures to the right. */
function table<R>(columns: readonly Column<R>[], data: readonly R[]): string[] {
  const shown = columns.filter((c) => c.text !== undefined);
  const rows = [shown.map((c) => c.text ?? ''), ...data.map((d) => shown.map((c) => c.cell(d, TEXT)))];
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  return rows.map((r) =>
    r
      .map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col])))
      .join('  ')
      .trimEnd(),
  );
}

/** The share of transactions that rode a cached connection: delivered without a connect or a handshake. */
function shareWithoutHandshake(t: { transactions: number; reused: number }): string {
  return `${t.reused} (${Math.round((100 * t.reused) / t.transactions)}%) on a cached connection, without a handshake`;
}

/** `1 destination`, `2 destinations`. */
function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
