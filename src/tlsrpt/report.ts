import { createHash } from 'node:crypto';
import type { PolicyType, Session } from './sessions.js';

/** The report of RFC 8460 4.4, field for field. */
export interface TlsrptReport {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info': string;
  'report-id': string;
  policies: PolicyResult[];
}

export interface PolicyResult {
  policy: {
    'policy-type': PolicyType;
    'policy-string'?: string[];
    'policy-domain': string;
    'mx-host'?: string[];
  };
  summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
  'failure-details'?: FailureDetail[];
}

export interface FailureDetail {
  'result-type': string;
  'sending-mta-ip'?: string;
  'receiving-mx-hostname'?: string;
  'receiving-mx-helo'?: string;
  'receiving-ip'?: string;
  'failed-session-count': number;
  'failure-reason-code'?: string;
}

/** An MTA-STS policy as the `mta-sts.policy` lines quote it. */
export interface KnownStsPolicy {
  text: string;
  mx: string[];
}

/** Who reports: RFC 8460's organization-name, contact-info, and the submitter domain of the filename, subject and headers. */
export interface Submitter {
  org: string;
  contact: string;
  domain: string;
}

/** One UTC day (RFC 8460 4.1: a report covers 00:00 to 24:00 UTC). */
export interface ReportDay {
  /** YYYY-MM-DD */
  date: string;
  startMs: number;
  endMs: number;
}

export function reportDay(date: string): ReportDay {
  const startMs = /^\d{4}-\d{2}-\d{2}$/.test(date) ? Date.parse(`${date}T00:00:00Z`) : NaN;
  if (Number.isNaN(startMs) || new Date(startMs).toISOString().slice(0, 10) !== date)
    throw new Error(`--date: "${date}" is not a day (YYYY-MM-DD)`);
  return { date, startMs, endMs: startMs + 86_400_000 };
}

/**
 * Deterministic per submitting organization, domain and day, so a second run makes the same report
 * and the record of what was sent recognises it; in the `id-left@id-right` form the mail subject
 * of RFC 8460 5.3 wants: `20261127.example.org.4f0c2a9e1b@example.net`.
 */
export function reportId(who: Submitter, domain: string, day: ReportDay): string {
  const hash = createHash('sha256').update(`${who.org}\n${domain}\n${day.date}`).digest('hex').slice(0, 10);
  return `${day.date.replaceAll('-', '')}.${domain}.${hash}@${who.domain}`;
}

/** RFC 8460 5.3: `sender!policy-domain!begin-timestamp!end-timestamp.json.gz`, timestamps in seconds since the epoch. */
export function reportFilename(who: Submitter, domain: string, day: ReportDay): string {
  return `${who.domain}!${domain}!${day.startMs / 1000}!${day.endMs / 1000 - 1}.json.gz`;
}

/**
 * One domain's report from its sessions of the day: one policy entry per policy the sessions were
 * made under (an MTA-STS policy per id, a TLSA RRset per MX host, or none found), each with its
 * counts and its failures grouped by everything RFC 8460 4.3 tells apart.
 */
export function buildReport(
  who: Submitter,
  domain: string,
  day: ReportDay,
  sessions: readonly Session[],
  stsPolicies: ReadonlyMap<string, KnownStsPolicy>,
): TlsrptReport {
  const groups = new Map<string, Session[]>();
  for (const s of sessions) {
    const key = policyKey(s);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(s);
  }
  const order: Record<PolicyType, number> = { sts: 0, tlsa: 1, 'no-policy-found': 2 };
  const policies = [...groups.entries()]
    .sort(([a, [x]], [b, [y]]) => order[x.type] - order[y.type] || a.localeCompare(b))
    .map(([, group]) => policyResult(domain, group, stsPolicies));
  return {
    'organization-name': who.org,
    'date-range': {
      'start-datetime': new Date(day.startMs).toISOString().replace('.000Z', 'Z'),
      'end-datetime': new Date(day.endMs - 1000).toISOString().replace('.000Z', 'Z'),
    },
    'contact-info': who.contact,
    'report-id': reportId(who, domain, day),
    policies,
  };
}

/** Where the text of an MTA-STS policy is looked up: domain and id. */
export function stsPolicyKey(domain: string, id: string): string {
  return `${domain.toLowerCase()} ${id}`;
}

function policyKey(s: Session): string {
  if (s.type === 'sts') return `sts ${s.stsId}`;
  if (s.type === 'tlsa') return `tlsa ${s.mxHost ?? ''} ${(s.tlsaRecords ?? []).join(' ')}`;
  return 'no-policy-found';
}

function policyResult(domain: string, group: Session[], stsPolicies: ReadonlyMap<string, KnownStsPolicy>): PolicyResult {
  const first = group[0];
  let policy: PolicyResult['policy'];
  if (first.type === 'sts') {
    // RFC 8460 4.3.1.2: the policy as fetched, one string per line; mx-host: its mx patterns.
    const known = stsPolicies.get(stsPolicyKey(domain, first.stsId!));
    const lines = known ? known.text.split(/\r?\n/).filter((l) => l !== '') : [];
    policy = { 'policy-type': 'sts', 'policy-string': lines, 'policy-domain': domain, 'mx-host': known?.mx ?? [] };
  } else if (first.type === 'tlsa') {
    // RFC 8460 4.3.1.1: the TLSA records; mx-host: the MX host they are of (the TLSA base domain).
    policy = { 'policy-type': 'tlsa', 'policy-string': first.tlsaRecords ?? [], 'policy-domain': domain };
    if (first.mxHost) policy['mx-host'] = [first.mxHost];
  } else {
    policy = { 'policy-type': 'no-policy-found', 'policy-domain': domain };
  }
  const failures = group.filter((s) => s.result !== 'success');
  const result: PolicyResult = {
    policy,
    summary: { 'total-successful-session-count': group.length - failures.length, 'total-failure-session-count': failures.length },
  };
  if (failures.length > 0) result['failure-details'] = failureDetails(failures);
  return result;
}

function failureDetails(failures: Session[]): FailureDetail[] {
  const byKey = new Map<string, FailureDetail>();
  for (const s of failures) {
    const detail: FailureDetail = {
      'result-type': s.result,
      ...(s.sendingIp ? { 'sending-mta-ip': s.sendingIp } : {}),
      ...(s.mxHost ? { 'receiving-mx-hostname': s.mxHost } : {}),
      ...(s.helo ? { 'receiving-mx-helo': s.helo } : {}),
      ...(s.receivingIp ? { 'receiving-ip': s.receivingIp } : {}),
      'failed-session-count': 0,
      ...(s.reasonCode ? { 'failure-reason-code': s.reasonCode } : {}),
    };
    const key = JSON.stringify({ ...detail, 'failed-session-count': 0 });
    const seen = byKey.get(key) ?? detail;
    seen['failed-session-count']++;
    byKey.set(key, seen);
  }
  return [...byKey.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, d]) => d);
}
