import { randomBytes } from 'node:crypto';
import type { SpoolRecipient } from './entry.js';

/** What a delivery status notification says about one spooled message. */
export interface DsnInput {
  /** Our name: Reporting-MTA, and the From and Message-ID domain. */
  hostname: string;
  /** The envelope sender, who gets the notification. */
  to: string;
  /** When ticketbooth took the message (ms since the epoch). */
  arrived: number;
  now: Date;
  /** The recipients that finally failed, or were relayed to a hop without DSN (RFC 3461 6.2), each with its last reply. */
  failed: SpoolRecipient[];
  /** MAIL's ENVID (xtext): the Original-Envelope-Id. */
  envid?: string;
  /** The original message's header section, as received (RFC 3462 text/rfc822-headers). */
  headers: Buffer;
}

/**
 * An RFC 3464 delivery status notification (multipart/report; report-type=delivery-status, RFC
 * 6522): a human part, one per-recipient block per failed recipient with its hop's reply as the
 * Diagnostic-Code, and the original headers. Sent with the null sender (RFC 5321 4.5.5), so it
 * can never bounce back.
 */
export function buildDsn(d: DsnInput): Buffer {
  const boundary = `tb-${randomBytes(9).toString('hex')}`;
  const eightBit = d.headers.some((b) => b >= 0x80);
  const human = d.failed.map((r) => `<${r.address}>: ${r.state === 'relayed' ? 'relayed; ' : ''}${r.by} said: ${r.reply}`).join('\r\n');
  const anyFailed = d.failed.some((r) => r.state !== 'relayed');
  const perRecipient = d.failed.map((r) =>
    [
      ...(r.dsn?.orcpt !== undefined ? [`Original-Recipient: ${fromXtext(r.dsn.orcpt)}`] : []),
      `Final-Recipient: rfc822; ${r.address}`,
      `Action: ${r.state === 'relayed' ? 'relayed' : 'failed'}`,
      `Status: ${statusOf(r)}`,
      ...(r.by !== d.hostname ? [`Remote-MTA: dns; ${hostOf(r.by)}`] : []),
      `Diagnostic-Code: smtp; ${oneLine(r.reply)}`,
    ].join('\r\n'),
  );
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${d.hostname}>`,
    `To: <${d.to}>`,
    `Subject: ${anyFailed ? 'Undelivered Mail Returned to Sender' : 'Delivery Status Notification (relayed)'}`,
    `Date: ${d.now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${boundary}@${d.hostname}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
  ];
  const text = [
    ...head,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    ...(anyFailed
      ? [
          `This is the mail relay at ${d.hostname}. Your message was delivered to its other`,
          'recipients, but could not be delivered to the recipients below.',
        ]
      : [
          `This is the mail relay at ${d.hostname}. Your message was relayed to the recipients below,`,
          'whose next hop does not offer delivery status notifications: no further notice will come.',
        ]),
    '',
    human,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    ...(d.envid !== undefined ? [`Original-Envelope-Id: ${fromXtext(d.envid)}`] : []),
    `Reporting-MTA: dns; ${d.hostname}`,
    `Arrival-Date: ${new Date(d.arrived).toUTCString().replace('GMT', '+0000')}`,
    '',
    perRecipient.join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    ...(eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
    '',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(text, 'utf8'), d.headers, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')]);
}

/** Whether the notification needs BODY=8BITMIME (the original headers carry 8-bit bytes). */
export function dsnIs8bit(headers: Buffer): boolean {
  return headers.some((b) => b >= 0x80);
}

/** The reply's enhanced code (RFC 3463), else its class; an expired temporary failure is 4.4.7. */
function statusOf(r: SpoolRecipient): string {
  const m = /^([245])\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(r.reply);
  if (r.reply.startsWith('4')) return m ? m[2] : '4.4.7';
  return m ? m[2] : `${r.reply[0] ?? '5'}.0.0`;
}

/** `mx.dest.test[192.0.2.1]:25` → `mx.dest.test`. */
function hostOf(label: string): string {
  return label.replace(/\[.*$/, '').replace(/:\d+$/, '');
}

/** xtext decoded (RFC 3461 4: `+XX`), as RFC 3464 fields carry it; kept encoded if that would give a control character. */
function fromXtext(x: string): string {
  const decoded = x.replace(/\+([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return [...decoded].some((c) => c < ' ' || c > '~') ? x : decoded;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 900);
}

/** The header section of a dot-stuffed body (up to its first empty line; at most `max` octets), unstuffed. */
export function headerSection(stuffed: Buffer, max = 65536): Buffer {
  const head = stuffed.subarray(0, max);
  const end = head.indexOf('\r\n\r\n');
  // Cut short: whole lines only.
  const text = head.subarray(0, end >= 0 ? end + 2 : head.lastIndexOf('\r\n') + 2).toString('latin1');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1'), 'latin1');
}
