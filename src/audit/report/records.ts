import type { z } from 'zod';
import {
  FULL_CAUSES,
  handshakeRecordSchema,
  refusedRecordSchema,
  smtpRecordSchema,
  upstreamErrorRecordSchema,
  type HandshakeRecord,
  type ReportRecord,
  type SmtpRecord,
} from './record-schemas.js';
import { tlsmgrLookupRecordSchema, tlsmgrUpdateRecordSchema } from './tlsmgr-figures.js';

/**
 * Reads audit lines into records (record-schemas.ts). The schemas decide; but zod's parse costs
 * about a microsecond a record, a tenth of the report's run over the common records, so a line as
 * ticketbooth writes it today passes a hand-written check of the same rules instead (`isCurrent`,
 * held to the schema by test/unit/audit/audit-records.test.ts) and is used as parsed: a copy, like zod's,
 * cost more in allocation than it saved. Nothing read is changed.
 */

type Envelope = { event: string } & Record<string, unknown>;

interface Reader<T extends ReportRecord> {
  schema: z.ZodType<T>;
  /** True when `schema` would return the line's fields as they are (no default, no catch). */
  isCurrent?(v: Envelope): v is Envelope & T;
}

const readerOf = <T extends ReportRecord>(r: Reader<T>): Reader<ReportRecord> => r;

export const READERS: ReadonlyMap<string, Reader<ReportRecord>> = new Map([
  ['tls.handshake', readerOf({ schema: handshakeRecordSchema, isCurrent: isCurrentHandshake })],
  ['smtp.transaction', readerOf({ schema: smtpRecordSchema, isCurrent: isCurrentSmtp })],
  ['client.refused', readerOf({ schema: refusedRecordSchema })],
  ['upstream.error', readerOf({ schema: upstreamErrorRecordSchema })],
  ['tlsmgr.lookup', readerOf({ schema: tlsmgrLookupRecordSchema })],
  ['tlsmgr.update', readerOf({ schema: tlsmgrUpdateRecordSchema })],
]);

/** A line that holds no record, by the counter of `InputCounts` it goes to. */
export type LineFault = 'blank' | 'malformed' | 'truncated' | 'otherEvents';

/** One line: the record it holds, or why it holds none. Never throws. */
export function readRecord(line: string): ReportRecord | LineFault {
  if (line.length === 0 || (line.charCodeAt(0) <= 32 && line.trim() === '')) return 'blank';
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return looksCutOff(line) ? 'truncated' : 'malformed';
  }
  if (!isEnvelope(value)) return 'malformed';
  const reader = READERS.get(value.event);
  if (!reader) return 'otherEvents';
  if (reader.isCurrent?.(value)) return value;
  const parsed = reader.schema.safeParse(value);
  return parsed.success ? parsed.data : 'malformed';
}

/** A JSON object with an `event` name: the least any record has. */
function isEnvelope(v: unknown): v is Envelope {
  return typeof v === 'object' && v !== null && typeof (v as { event?: unknown }).event === 'string';
}

const KNOWN_CAUSES: ReadonlySet<unknown> = new Set(FULL_CAUSES);

function isCurrentSmtp(r: Envelope): r is Envelope & SmtpRecord {
  return (
    Number.isFinite(r.code) &&
    optionalString(r.time) &&
    optionalString(r.nextHop) &&
    (r.reused === undefined || isReused(r.reused)) &&
    (r.hops === undefined || typeof r.hops === 'number') &&
    r.dane === undefined &&
    r.sts === undefined &&
    // DSN, REQUIRETLS and TLS-Required: No (smtp-requests.ts) are rare: their lines take the schema.
    r.dsn === undefined &&
    r.requireTls === undefined &&
    r.policyBypass === undefined
  );
}

function isReused(v: unknown): boolean {
  const r = v as { ageMs?: unknown; use?: unknown } | null;
  return typeof r === 'object' && r !== null && typeof r.ageMs === 'number' && typeof r.use === 'number';
}

function isCurrentHandshake(r: Envelope): r is Envelope & HandshakeRecord {
  return (
    typeof r.destination === 'string' &&
    typeof r.resumed === 'boolean' &&
    typeof r.offered === 'string' &&
    optionalString(r.time) &&
    typeof r.listener === 'string' &&
    typeof r.servername === 'string' &&
    optionalString(r.protocol) &&
    optionalString(r.offeredHash) &&
    typeof r.reoffered === 'boolean' &&
    (r.fullCause === undefined || KNOWN_CAUSES.has(r.fullCause)) &&
    Number.isFinite(r.ticketsReceived) &&
    (r.ticketsUnreadable === undefined || Number.isFinite(r.ticketsUnreadable)) &&
    Number.isFinite(r.ticketsLeft) &&
    Number.isFinite(r.handshakeMs) &&
    optionalString(r.error) &&
    optionalString(r.errorCode)
  );
}

function optionalString(v: unknown): boolean {
  return v === undefined || typeof v === 'string';
}

/** A record that starts like one of ours and stops before its closing brace. */
function looksCutOff(line: string): boolean {
  const t = line.trimEnd();
  return t.startsWith('{') && !t.endsWith('}');
}
