import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Report-ids older than this many days are forgotten (a report is for one day; nobody resends a quarter-old one). */
const KEEP_DAYS = 90;

/**
 * What was delivered where: per report-id, the URIs that took it and when. A run delivers a report
 * to a URI only when this does not already hold it, and writes it down after each delivery that
 * succeeded (a failed one is tried again by the next run), so running twice sends nothing twice.
 * The file is replaced whole (written aside, then renamed), never left half written.
 */
export class SentState {
  private readonly sent: Record<string, Record<string, string>>;

  private constructor(
    private readonly file: string,
    sent: Record<string, Record<string, string>>,
  ) {
    this.sent = sent;
  }

  /** The state in `file`; empty when there is none yet. A file that is not ours is an error, not a fresh start (that could resend everything). */
  static load(file: string): SentState {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new SentState(file, {});
      throw err;
    }
    const parsed = JSON.parse(text) as { sent?: unknown };
    if (typeof parsed !== 'object' || parsed === null || typeof parsed.sent !== 'object' || parsed.sent === null)
      throw new Error(`${file}: not a TLS-RPT delivery record`);
    return new SentState(file, parsed.sent as Record<string, Record<string, string>>);
  }

  has(reportId: string, uri: string): boolean {
    return this.sent[reportId]?.[uri] !== undefined;
  }

  /** Notes a delivery and saves at once: a run that dies later must not send this one again. */
  record(reportId: string, uri: string, now = new Date()): void {
    (this.sent[reportId] ??= {})[uri] = now.toISOString();
    this.forgetOld(now);
    mkdirSync(dirname(this.file), { recursive: true });
    const aside = `${this.file}.${process.pid}.tmp`;
    writeFileSync(aside, JSON.stringify({ sent: this.sent }, null, 1) + '\n');
    renameSync(aside, this.file);
  }

  /** Report-ids start with their day (`20261127.`): the ones past `KEEP_DAYS` go. */
  private forgetOld(now: Date): void {
    const limit = new Date(now.getTime() - KEEP_DAYS * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
    for (const id of Object.keys(this.sent)) if (/^\d{8}\./.test(id) && id.slice(0, 8) < limit) delete this.sent[id];
  }
}
