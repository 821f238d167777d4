import { TicketboothError } from '../../errors/index.js';
import { Aggregator } from './aggregate.js';
import { formatHtml } from './format-html.js';
import { formatJson } from './format-json.js';
import { formatText } from './format-text.js';
import { readLines, type InputProblem } from './read-lines.js';
import { buildReport, type AuditReport } from './report.js';

export type ReportFormat = 'text' | 'json' | 'html';

export interface AuditReportOptions {
  /** Files in the order given; none (or `-`) reads stdin. */
  files: string[];
  since?: string;
  until?: string;
  dest?: string;
  format: ReportFormat;
  /** How far apart two offers of one ticket are still recognised (default 7 days). */
  ticketWindowSeconds?: number;
  /** Destinations reported one by one (default 20,000); further ones are pooled. */
  maxDestinations?: number;
}

export class ReportOptionError extends TicketboothError {
  readonly code = 'ERR_REPORT_OPTION';
}

/** Reads the logs once, streaming, and returns the report as data. */
export async function auditReport(opts: AuditReportOptions): Promise<AuditReport> {
  const sinceMs = time(opts.since, '--since');
  const untilMs = time(opts.until, '--until');
  const agg = new Aggregator({
    filters: { sinceMs, untilMs, dest: opts.dest },
    series: opts.format === 'html',
    ticketWindowMs: opts.ticketWindowSeconds === undefined ? undefined : opts.ticketWindowSeconds * 1000,
    maxDestinations: opts.maxDestinations,
  });
  const problems: InputProblem[] = [];
  await readLines(opts.files, problems, (line) => agg.addLine(line));
  return buildReport(agg, { sources: opts.files, filters: { since: opts.since, until: opts.until, dest: opts.dest }, problems });
}

export function formatReport(r: AuditReport, format: ReportFormat): string {
  return format === 'json' ? formatJson(r) : format === 'html' ? formatHtml(r) : formatText(r);
}

function time(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new ReportOptionError(`${flag}: "${value}" is not an ISO 8601 time`);
  return t;
}
