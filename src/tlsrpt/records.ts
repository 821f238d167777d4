import * as z from 'zod';

/**
 * The audit lines a TLS-RPT report is built from, narrowed to the fields it reads and as lenient
 * as a log's history needs (as audit/report/record-schemas.ts is for `ticketbooth audit`): a
 * field of the wrong type is dropped, not the line. A line without `time` cannot be placed in a
 * day and is not read; nor is one whose policy objects lack what a session needs.
 */

const opt = <T extends z.ZodType>(t: T) => t.optional().catch(undefined);
const str = opt(z.string());

export const stsRecordSchema = z.object({
  domain: z.string(),
  mode: str,
  id: str,
  mxHost: str,
  mx: str,
  result: str,
  fetchFailure: str,
});
export type StsRecord = z.output<typeof stsRecordSchema>;

export const daneRecordSchema = z.object({
  applied: z.string(),
  tlsa: str,
  reason: str,
  domain: str,
  mxHost: str,
  tlsaRecords: opt(z.array(z.string())),
  result: str,
});
export type DaneRecord = z.output<typeof daneRecordSchema>;

const policies = { sts: opt(stsRecordSchema), dane: opt(daneRecordSchema) };

export const handshakeSchema = z.object({
  event: z.literal('tls.handshake'),
  time: z.string(),
  destination: z.string(),
  servername: str,
  ehloName: str,
  errorCode: str,
  sendingIp: str,
  ...policies,
});

export const upstreamErrorSchema = z.object({
  event: z.literal('upstream.error'),
  time: z.string(),
  destination: z.string(),
  stage: z.string(),
  errorCode: str,
  sendingIp: str,
  ehloName: str,
  ...policies,
});

export const transactionSchema = z.object({
  event: z.literal('smtp.transaction'),
  time: z.string(),
  nextHop: str,
  reused: opt(z.object({ use: z.number() })),
  cleartext: str,
  ...policies,
});

export const stsPolicySchema = z.object({
  event: z.literal('mta-sts.policy'),
  time: str,
  domain: z.string(),
  id: z.string(),
  mode: z.string(),
  mx: z.array(z.string()).catch([]),
  text: z.string(),
});

export type HandshakeRecord = z.output<typeof handshakeSchema>;
export type UpstreamErrorRecord = z.output<typeof upstreamErrorSchema>;
export type TransactionRecord = z.output<typeof transactionSchema>;
export type StsPolicyRecord = z.output<typeof stsPolicySchema>;
export type TlsrptRecord = HandshakeRecord | UpstreamErrorRecord | TransactionRecord | StsPolicyRecord;

const SCHEMAS: ReadonlyMap<string, z.ZodType<TlsrptRecord>> = new Map<string, z.ZodType<TlsrptRecord>>([
  ['tls.handshake', handshakeSchema],
  ['upstream.error', upstreamErrorSchema],
  ['smtp.transaction', transactionSchema],
  ['mta-sts.policy', stsPolicySchema],
]);

/** One audit line as a record a report reads, or undefined (another event, or not a record at all). Never throws. */
export function readTlsrptRecord(line: string): TlsrptRecord | undefined {
  // Most lines of a busy log are of no interest (handshakes without a policy, other events): skip them unparsed.
  if (!line.includes('"sts"') && !line.includes('"dane"') && !line.includes('"mta-sts.policy"')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const event = (value as { event?: unknown } | null)?.event;
  const schema = typeof event === 'string' ? SCHEMAS.get(event) : undefined;
  const parsed = schema?.safeParse(value);
  return parsed?.success ? parsed.data : undefined;
}
