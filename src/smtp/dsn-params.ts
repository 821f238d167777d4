import type { EnvelopeArg } from './envelope.js';
import { reply, type LocalReply } from './replies.js';

export { dsnSuffix, wants } from './spool/dsn-words.js';

/**
 * DSN parameters (RFC 3461): MAIL's RET and ENVID, RCPT's NOTIFY and ORCPT. Each is kept as the
 * word the client sent, so a next hop that announces DSN gets it byte for byte; a hop that does
 * not gets none of them, and ticketbooth does what RFC 3461 6.2 asks of the relaying MTA.
 */

/** MAIL's DSN words as received (`RET=HDRS`, `ENVID=...`). */
export interface MailDsn {
  words: string[];
  ret?: 'FULL' | 'HDRS';
  /** ENVID's xtext, as received: the notification's Original-Envelope-Id. */
  envid?: string;
}

/** RCPT's DSN words as received, and what they ask of ticketbooth. */
export interface RcptDsn {
  words: string[];
  /** NOTIFY's value upper-cased (`NEVER`, or a list of SUCCESS, FAILURE, DELAY); absent: not given. */
  notify?: string;
  /** ORCPT's value as received (`rfc822;x+40y`): the notification's Original-Recipient. */
  orcpt?: string;
}

/** RFC 3461 4: xtext (printable ASCII but `+` and `=`, or `+` and two upper-case hex digits). */
const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/;
const NOTIFY = /^(?:NEVER|(?:SUCCESS|FAILURE|DELAY)(?:,(?:SUCCESS|FAILURE|DELAY))*)$/i;

const bad = (what: string): LocalReply => reply(501, '5.5.4', `bad ${what} parameter (RFC 3461)`);

/** The MAIL parameter `key` (upper-cased) with `value`, when it is one of DSN's: parsed, or refused. */
export function mailDsnParam(dsn: MailDsn, arg: EnvelopeArg, key: string, value: string | undefined): LocalReply | undefined {
  const word = arg.words.get(key)!;
  if (key === 'RET') {
    if (value === undefined || !/^(FULL|HDRS)$/i.test(value)) return bad('RET');
    dsn.ret = value.toUpperCase() as 'FULL' | 'HDRS';
  } else {
    // ENVID: at most 100 characters (RFC 3461 4.4).
    if (value === undefined || value.length > 100 || !XTEXT.test(value)) return bad('ENVID');
    dsn.envid = value;
  }
  dsn.words.push(word);
  return undefined;
}

export const MAIL_DSN_KEYS: ReadonlySet<string> = new Set(['RET', 'ENVID']);

/** RCPT's parameters: NOTIFY and ORCPT only (anything else is refused by the caller). */
export function rcptDsn(arg: EnvelopeArg): RcptDsn | LocalReply {
  const dsn: RcptDsn = { words: [] };
  for (const [key, value] of arg.params) {
    if (key === 'NOTIFY') {
      if (value === undefined || !NOTIFY.test(value)) return bad('NOTIFY');
      dsn.notify = value.toUpperCase();
    } else if (key === 'ORCPT') {
      // addr-type ";" xtext, at most 500 characters (RFC 3461 4.2).
      const semi = value?.indexOf(';') ?? -1;
      if (value === undefined || value.length > 500 || semi <= 0) return bad('ORCPT');
      if (!ATOM.test(value.slice(0, semi)) || !XTEXT.test(value.slice(semi + 1))) return bad('ORCPT');
      dsn.orcpt = value;
    } else {
      return reply(555, '5.5.4', `unsupported parameter ${key}`);
    }
    dsn.words.push(arg.words.get(key)!);
  }
  return dsn;
}
