import * as z from 'zod';

/**
 * One spooled message, as `<id>.json` beside its body `<id>.eml` (the message as the client sent
 * it, dot-stuffed, without the final dot). Written whole to a temporary name, fsync'ed and renamed
 * over the old one, so a crash leaves the old state or the new, never half of one. A file format:
 * add fields, never rename.
 */
export const spoolRecipientSchema = z.object({
  address: z.string(),
  /** pending: retried until `maxAgeSeconds`; failed: in the notification; delivered: done. */
  /** relayed: taken by a next hop without DSN while NOTIFY asked for SUCCESS; in the notification as `Action: relayed` (RFC 3461 6.2). */
  state: z.enum(['pending', 'failed', 'delivered', 'relayed']),
  /** The last reply for it, as the next hop (or ticketbooth) gave it: the notification's Diagnostic-Code. */
  reply: z.string(),
  /** Who gave that reply (`host[ip]:port`, or ticketbooth's own host name): the notification's Remote-MTA. */
  by: z.string(),
  attempts: z.number(),
  /** RCPT's NOTIFY/ORCPT words as received (RFC 3461): every retry sends them, the notification honours them. */
  dsn: z.object({ words: z.array(z.string()), notify: z.string().optional(), orcpt: z.string().optional() }).optional(),
});
export type SpoolRecipient = z.infer<typeof spoolRecipientSchema>;

export const spoolEntrySchema = z.object({
  version: z.literal(1),
  id: z.string().regex(/^[a-z0-9-]+$/),
  listener: z.string(),
  /** When ticketbooth took responsibility (ms since the epoch): retries end `maxAgeSeconds` after it. */
  created: z.number(),
  /** The envelope sender; '' is the null sender, who gets no notification. */
  from: z.string(),
  smtputf8: z.boolean(),
  body: z.enum(['7BIT', '8BITMIME']).optional(),
  /** MAIL … REQUIRETLS (RFC 8689): every retry asks it again, and so does the notification (it quotes the headers). */
  requireTls: z.boolean().optional(),
  /** MAIL … X-TLS-REQUIRED=NO (TLS-Required: No): every retry asks it again; the notification does not (it is ticketbooth's own mail). */
  tlsRequiredNo: z.boolean().optional(),
  /** MAIL's RET/ENVID words as received (RFC 3461): every retry sends them; ENVID goes into the notification. */
  dsn: z.object({ words: z.array(z.string()), ret: z.enum(['FULL', 'HDRS']).optional(), envid: z.string().optional() }).optional(),
  recipients: z.array(spoolRecipientSchema),
  /** The next retry of pending recipients (or of the notification), ms since the epoch. */
  nextAttempt: z.number(),
  /** When the last recipient became final: the notification is tried for `maxAgeSeconds` from here. */
  finalAt: z.number().optional(),
  /** The notification was taken by the next hop (or is not owed): the entry can go. */
  notified: z.boolean().default(false),
});
export type SpoolEntry = z.infer<typeof spoolEntrySchema>;
