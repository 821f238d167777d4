import { UPSTREAM_ERROR_CAUSES } from '../error-cause.js';
import type { AuditReport, DestinationReport, Percentiles, StatsReport } from './report.js';

/** A terminal-width summary: overall figures, then one table row per destination, busiest first. */
export function formatText(r: AuditReport): string {
  const o = r.overall;
  const out: string[] = [];
  const span = o.firstSeen ? ` from ${o.firstSeen} to ${o.lastSeen}` : '';
  out.push(`ticketbooth audit: ${o.connections} TLS handshakes to ${o.destinations} destinations${span}`);
  const i = r.input;
  out.push(
    `input: ${i.lines} lines from ${r.sources.join(', ')}; ${i.malformed} malformed, ${i.truncated} truncated, ` +
      `${i.otherEvents} of other kinds, ${i.filteredOut} filtered out`,
  );
  for (const p of i.problems) out.push(`input problem: ${p.source}: ${p.error}`);
  if (i.pooledHandshakes) out.push(`${i.pooledHandshakes} handshakes to destinations past --max-destinations are pooled as "(other destinations)"`);
  const f = Object.entries(r.filters).filter(([, v]) => v !== undefined);
  if (f.length) out.push(`filters: ${f.map(([k, v]) => `--${k} ${v}`).join(' ')}`);
  out.push('');
  out.push('Overall');
  out.push(...statsLines(o).map((l) => `  ${l}`));
  if (o.smtp.transactions) out.push(`  SMTP transactions: ${o.smtp.transactions} (${entries(o.smtp.byClass)})`);
  if (Object.keys(o.clientsRefused).length) out.push(`  clients refused: ${entries(o.clientsRefused)}`);
  const u = r.upstreamErrors;
  if (u.total) out.push(`  failed upstream attempts: ${u.total} by cause (${entries(u.byCause)}), by stage (${entries(u.byStage)})`);
  const v = r.destinations.map((d) => d.verdict);
  out.push(
    `  destinations: ${v.filter((x) => x.renews === 'yes').length} renew on resumption, ` +
      `${v.filter((x) => x.renews === 'no').length} do not, ${v.filter((x) => x.renews === 'unknown').length} unknown; ` +
      `${v.filter((x) => x.reusedTickets === 'refused').length} refuse reused tickets`,
  );
  const window = r.singleUseCheck.shortenedToSeconds !== undefined
    ? `${r.singleUseCheck.shortenedToSeconds} s (shortened from ${r.singleUseCheck.windowSeconds} s: too many tickets)`
    : `${r.singleUseCheck.windowSeconds} s`;
  out.push(`  single-use check covers offers up to ${window} apart`);
  if (r.destinations.length === 0) return upstreamErrorLines(r, out).join('\n') + '\n';

  out.push('');
  out.push('Destinations (handshake times in ms, p50/p95)');
  const header = ['DESTINATION', 'CONN', 'RESUMED', 'FULL', 'NONE/EXP/REF/VER', 'VERSIONS', 'TKT/FULL', 'TKT/RES', 'K', 'RENEWS', 'REUSED', 'CEILING', 'REPEATS A/U', 'FULL MS', 'RESUMED MS', 'LEFT'];
  const rows = r.destinations.map((d) => row(d));
  out.push(...table([header, ...rows]));
  out.push('');
  out.push('Verdicts');
  for (const d of r.destinations) {
    out.push(`  ${d.destination}: ${d.verdict.phrases.join('; ') || (d.connections === d.failed ? 'no successful handshake' : 'no verdict yet')}; ceiling ${ceiling(d)} (${d.verdict.ceilingBasis})`);
  }
  return upstreamErrorLines(r, out).join('\n') + '\n';
}

/** Failed attempts per destination: one column per cause, then where they stopped. */
function upstreamErrorLines(r: AuditReport, out: string[]): string[] {
  if (r.upstreamErrors.destinations.length === 0) return out;
  out.push('');
  out.push('Upstream errors (failed attempts by cause; stage: tls = the handshake, others before it)');
  const header = ['DESTINATION', 'FAILED', ...UPSTREAM_ERROR_CAUSES.map((c) => c.toUpperCase()), 'STAGES'];
  const rows = r.upstreamErrors.destinations.map((d) => [d.destination, String(d.total), ...UPSTREAM_ERROR_CAUSES.map((c) => String(d.byCause[c] ?? 0)), entries(d.byStage)]);
  out.push(...table([header, ...rows]));
  return out;
}

function statsLines(s: StatsReport): string[] {
  const c = s.fullByCause;
  return [
    `connections ${s.connections}, resumed ${s.resumed} (${pct(s.resumedShare)}), full ${s.full}, failed ${s.failed}${s.failed ? ` (${entries(s.errors)})` : ''}`,
    `full handshakes by cause: nothing offered ${c['nothing-offered']}, expired ${c.expired}, refused ${c.refused}, version mismatch ${c['version-mismatch']}${c.unknown ? `, unknown ${c.unknown}` : ''}`,
    `TLS versions: ${entries(s.versions) || 'none'}`,
    `tickets received per full handshake ${num(s.ticketsPerFull)}, per resumed ${num(s.ticketsPerResumed)}; unreadable, not kept ${s.ticketsUnreadable}`,
    `adaptive reuse: ${s.adaptiveReuse.reoffered} spent tickets offered again, ${s.adaptiveReuse.resumed} resumed, ${s.adaptiveReuse.refused} refused`,
    `single-use violations (a ticket offered twice): ${s.singleUseViolations.total} (adaptive reuse ${s.singleUseViolations.adaptive}, unattributed ${s.singleUseViolations.unattributed})`,
    `handshake ms: full ${pq(s.handshakeMs.full)}, resumed ${pq(s.handshakeMs.resumed)}`,
  ];
}

function row(d: DestinationReport): string[] {
  const c = d.fullByCause;
  const v = d.verdict;
  return [
    d.destination,
    String(d.connections),
    pct(d.resumedShare),
    String(d.full),
    `${c['nothing-offered']}/${c.expired}/${c.refused}/${c['version-mismatch']}`,
    Object.keys(d.versions).map((x) => x.replace('TLSv', '')).join(',') || '-',
    num(d.ticketsPerFull),
    num(d.ticketsPerResumed),
    v.ticketsPerFull === null ? '-' : String(v.ticketsPerFull),
    v.renews,
    v.reusedTickets,
    ceiling(d),
    `${d.singleUseViolations.adaptive}/${d.singleUseViolations.unattributed}`,
    pq(d.handshakeMs.full),
    pq(d.handshakeMs.resumed),
    String(d.ticketsLeft),
  ];
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  return rows.map((r) => r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ').trimEnd());
}

function ceiling(d: DestinationReport): string {
  const c = d.verdict.ceiling;
  if (c === null) return '-';
  return d.verdict.renews === 'yes' || c === 1 ? '~1' : pct(c);
}

function pq(p: Percentiles): string {
  return p.n === 0 ? '-' : `${p.p50}/${p.p95}`;
}

function pct(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(1)}%`;
}

function num(x: number | null): string {
  return x === null ? '-' : x.toFixed(2);
}

function entries(o: Record<string, number>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}
