import { readLines, type InputProblem } from '../audit/report/read-lines.js';
import { readTlsrptRecord } from './records.js';
import { stsPolicyKey, type KnownStsPolicy, type ReportDay } from './report.js';
import { sessionsOf, type Session } from './sessions.js';

/** What a day's audit lines hold for TLS-RPT: sessions per recipient domain, and the text of every policy quoted. */
export interface DayCollection {
  sessions: Map<string, Session[]>;
  stsPolicies: Map<string, KnownStsPolicy>;
  problems: InputProblem[];
}

/**
 * Reads the audit files (`.gz` and rotated ones too, stdin for none or `-`) once, streaming, and
 * keeps the day's sessions. Policy texts are taken from every `mta-sts.policy` line read, of any
 * day: a policy fetched the day before still quotes right; the newest text of an id wins.
 */
export async function collectDay(files: readonly string[], day: ReportDay): Promise<DayCollection> {
  const sessions = new Map<string, Session[]>();
  const stsPolicies = new Map<string, KnownStsPolicy & { at: number }>();
  const problems: InputProblem[] = [];
  await readLines(files, problems, (line) => {
    const r = readTlsrptRecord(line);
    if (!r) return;
    const at = r.time === undefined ? NaN : Date.parse(r.time);
    if (r.event === 'mta-sts.policy') {
      const key = stsPolicyKey(r.domain, r.id);
      const known = stsPolicies.get(key);
      if (!known || !(known.at > at)) stsPolicies.set(key, { text: r.text, mx: r.mx, at: Number.isNaN(at) ? 0 : at });
      return;
    }
    if (!(at >= day.startMs && at < day.endMs)) return;
    for (const s of sessionsOf(r)) {
      let list = sessions.get(s.domain);
      if (!list) sessions.set(s.domain, (list = []));
      list.push(s);
    }
  });
  return { sessions, stsPolicies, problems };
}
