import type { RefusalReason } from '../audit/events.js';
import type { SmtpReply } from '../upstream/smtp-client/reply-reader.js';
import { oneLine } from '../util/text.js';
import { TLS_REQUIRED_KEYWORD } from './tls-required-no.js';

/** A reply ticketbooth makes itself: code, enhanced status code (RFC 3463), text. */
export interface LocalReply {
  code: number;
  enhanced: string;
  text: string;
}

/** What goes to the client: a local reply, or an upstream reply passed through unchanged. */
export type Reply = LocalReply | SmtpReply;

export function isLocal(r: Reply): r is LocalReply {
  return 'enhanced' in r;
}

/** One line, CRLF-terminated; the text is cut to keep within RFC 5321's 512-octet reply line. */
export function format(r: Reply): string {
  if (!isLocal(r)) return r.raw;
  return `${r.code} ${r.enhanced ? r.enhanced + ' ' : ''}${oneLine(r.text, 400)}\r\n`;
}

export function reply(code: number, enhanced: string, text: string): LocalReply {
  return { code, enhanced, text };
}

/** What a refused SMTP client hears before the close: 554 outside the allow list, 421 over the limit. */
export function refusalLine(reason: RefusalReason, hostname?: string): string {
  const who = hostname ? `${hostname} ticketbooth` : 'ticketbooth';
  if (reason === 'allow-list') return `554 5.7.1 ${who}: access denied\r\n`;
  return `421 4.7.0 ${who}: too many connections${reason === 'client-limit' ? ' from your address' : ''}, try again later\r\n`;
}

/** What EHLO (and LHLO) offers: an LMTP server must pipeline (RFC 2033 4.1), and does here either way. */
export function ehloReply(hostname: string, maxMessageSize: number, dsn = false): SmtpReply {
  const lines = [
    hostname,
    'PIPELINING',
    `SIZE ${maxMessageSize}`,
    'ENHANCEDSTATUSCODES',
    '8BITMIME',
    'SMTPUTF8',
    'REQUIRETLS',
    TLS_REQUIRED_KEYWORD,
  ];
  // DSN only where a spool can hold the "relayed" notifications it may owe (RFC 3461 6.2).
  if (dsn) lines.push('DSN');
  return { code: 250, lines, raw: lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join('') };
}
