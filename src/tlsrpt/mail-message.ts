import { createHash } from 'node:crypto';

export interface ReportMail {
  /** From: the report's contact address. */
  from: string;
  /** To: the `mailto:` rua's address. */
  to: string;
  /** The policy domain (TLS-Report-Domain) and the submitter's domain (TLS-Report-Submitter). */
  domain: string;
  submitter: string;
  org: string;
  reportId: string;
  /** The attachment's name (RFC 8460 5.3) and the gzip-compressed report. */
  filename: string;
  gzipped: Buffer;
  date?: Date;
}

/**
 * The report as the mail of RFC 8460 5.3: subject `Report Domain: … Submitter: … Report-ID: <…>`,
 * the `TLS-Report-Domain` and `TLS-Report-Submitter` headers, a `multipart/report;
 * report-type="tlsrpt"` body with a short text part and the report as an `application/tlsrpt+gzip`
 * attachment (base64). `TLS-Required: No` (RFC 8689) asks relays to deliver it whatever their TLS
 * policy: a report about a domain's broken TLS must still reach that domain (RFC 8460 5.3).
 * Lines end in CRLF; nothing is longer than 78 characters but the subject's parts, which fold.
 */
export function reportMessage(m: ReportMail): Buffer {
  const date = m.date ?? new Date();
  const id = createHash('sha256').update(`${m.reportId}\n${m.to}`).digest('hex').slice(0, 20);
  const boundary = `----=_tlsrpt_${id}`;
  const text = [
    `This is an aggregate TLS report (RFC 8460) from ${ascii(m.org)}`,
    `(${m.submitter}) for ${m.domain}.`,
    `Report-ID: ${m.reportId}`,
  ];
  const lines = [
    `From: <${m.from}>`,
    `To: <${m.to}>`,
    `Date: ${rfc5322Date(date)}`,
    `Subject: Report Domain: ${m.domain}`,
    ` Submitter: ${m.submitter}`,
    ` Report-ID: <${m.reportId}>`,
    `Message-ID: <tlsrpt.${id}@${m.submitter}>`,
    `TLS-Report-Domain: ${m.domain}`,
    `TLS-Report-Submitter: ${m.submitter}`,
    'TLS-Required: No',
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt";`,
    ` boundary="${boundary}"`,
    '',
    'This is a multipart message in MIME format.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset="us-ascii"',
    'Content-Transfer-Encoding: 7bit',
    '',
    ...text,
    '',
    `--${boundary}`,
    'Content-Type: application/tlsrpt+gzip',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment;',
    ` filename="${m.filename}"`,
    '',
    ...(m.gzipped.toString('base64').match(/.{1,76}/g) ?? []),
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'ascii');
}

/** `Fri, 27 Nov 2026 00:05:00 +0000` (RFC 5322 3.3). */
function rfc5322Date(d: Date): string {
  return d.toUTCString().replace('GMT', '+0000');
}

/** Header text stays ASCII: anything else becomes `?` (the organization name is the operator's free text). */
function ascii(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}
