import { writeFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { auditReport, formatReport, type ReportFormat } from './run-report.js';

export interface AuditFlags {
  since?: string;
  until?: string;
  dest?: string;
  format: string;
  ticketWindow: string;
  maxDestinations: string;
  output?: string;
}

/** `ticketbooth audit`: the report on stdout (or a file). */
export async function auditCommand(files: string[], f: AuditFlags): Promise<void> {
  if (f.format !== 'text' && f.format !== 'json' && f.format !== 'html')
    throw new InvalidArgumentError(`--format: expected text, json or html, not "${f.format}"`);
  const window = Number(f.ticketWindow);
  if (!Number.isFinite(window) || window <= 0) throw new InvalidArgumentError(`--ticket-window: expected seconds, not "${f.ticketWindow}"`);
  const maxDestinations = Number(f.maxDestinations);
  if (!Number.isInteger(maxDestinations) || maxDestinations < 1)
    throw new InvalidArgumentError(`--max-destinations: expected a positive integer, not "${f.maxDestinations}"`);
  const format: ReportFormat = f.format;
  const report = await auditReport({
    files,
    since: f.since,
    until: f.until,
    dest: f.dest,
    format,
    ticketWindowSeconds: window,
    maxDestinations,
  });
  // An input that could not be read is an error, not a report of nothing: the report still shows
  // what was read, and the exit status says that something was not.
  for (const p of report.input.problems) process.stderr.write(`ticketbooth audit: ${p.source}: ${p.error}\n`);
  if (report.input.problems.length > 0) process.exitCode = 1;
  const text = formatReport(report, format);
  if (f.output) writeFileSync(f.output, text);
  else {
    // A reader that stops early (`| head`) is not an error.
    const early = (err: NodeJS.ErrnoException): void => {
      if (err.code !== 'EPIPE') throw err;
    };
    process.stdout.on('error', early);
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(text, (err) => (err && (err as NodeJS.ErrnoException).code !== 'EPIPE' ? reject(err) : resolve())),
    );
  }
}
