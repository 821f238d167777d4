import * as z from 'zod';
import type { TlsmgrLookupRecord, TlsmgrUpdateRecord } from './tlsmgr-figures.js';
import {
  clientRefusedEventSchema,
  fullHandshakeCauseSchema,
  handshakeEventSchema,
  smtpTransactionEventSchema,
  upstreamErrorEventSchema,
} from '../events.js';

/**
 * Audit records as the report reads them: the schemas of events.ts, narrowed to the fields the
 * report uses and as lenient as a log's history needs. Only the fields without which a record
 * means nothing are required; a line from before a field existed, or with a field of the wrong
 * type, still counts, with that field defaulted or dropped. (records.ts reads lines with them.)
 */

const h = handshakeEventSchema.shape;

/** A cause this version does not know (or not a string) is counted, as `unknown`. */
export const FULL_CAUSES = [...fullHandshakeCauseSchema.options, 'unknown'] as const;

export const handshakeRecordSchema = z.object({
  event: h.event,
  destination: h.destination,
  resumed: h.resumed,
  /** An offer kind this version does not know still counts as a handshake. */
  offered: z.string(),
  time: h.time.catch(undefined),
  listener: h.listener.catch(''),
  servername: h.servername.catch(''),
  protocol: h.protocol.catch(undefined),
  offeredHash: h.offeredHash.catch(undefined),
  reoffered: h.reoffered.catch(false),
  fullCause: z.enum(FULL_CAUSES).optional().catch('unknown'),
  ticketsReceived: h.ticketsReceived.catch(0),
  ticketsUnreadable: h.ticketsUnreadable.catch(undefined),
  ticketsLeft: h.ticketsLeft.catch(0),
  handshakeMs: h.handshakeMs.catch(NaN),
  /** Whatever it holds, an `error` says the handshake failed. */
  error: h.error.catch((c) => String(c.value)),
  errorCode: h.errorCode.catch(undefined),
});
export type HandshakeRecord = z.output<typeof handshakeRecordSchema>;

const s = smtpTransactionEventSchema.shape;
export const smtpRecordSchema = z.object({
  event: s.event,
  code: s.code,
  time: s.time.catch(undefined),
  nextHop: s.nextHop.catch(undefined),
  reused: s.reused.catch(undefined),
  hops: s.hops.catch(undefined),
  dane: s.dane.catch(undefined),
  sts: s.sts.catch(undefined),
  dsn: s.dsn.catch(undefined),
  requireTls: z.string().optional().catch(undefined),
  policyBypass: s.policyBypass.catch(undefined),
});

const c = clientRefusedEventSchema.shape;
/** Reasons are tallied as written, even ones this version does not know. */
export const refusedRecordSchema = z.object({
  event: c.event,
  reason: z.string().catch((x) => String(x.value)),
  time: c.time.catch(undefined),
});

const u = upstreamErrorEventSchema.shape;
export const upstreamErrorRecordSchema = z.object({
  event: u.event,
  destination: u.destination,
  /** Stages this version does not know (and `tls`, which only a failed handshake has) are `other`. */
  stage: z.enum([...u.stage.options, 'other']).catch('other'),
  errorCode: u.errorCode.optional().catch(undefined),
  error: u.error.optional().catch(undefined),
  time: u.time.catch(undefined),
});

export type SmtpRecord = z.output<typeof smtpRecordSchema>;
export type RefusedRecord = z.output<typeof refusedRecordSchema>;
export type UpstreamErrorRecord = z.output<typeof upstreamErrorRecordSchema>;
export type ReportRecord = HandshakeRecord | SmtpRecord | RefusedRecord | UpstreamErrorRecord | TlsmgrLookupRecord | TlsmgrUpdateRecord;
