import { randomBytes } from 'node:crypto';
import { type Attrs, encodeData, encodeInt, decodeInt } from './attr0.js';

/**
 * The requests of Postfix's tls_mgr.c and the replies tlsmgr(8) gives (src/tlsmgr/tlsmgr.c),
 * for what ticketbooth does not own when no real tlsmgr is there to forward to: it answers as a
 * tlsmgr whose caches are disabled.
 */

export type Reply = Array<[string, string]>;

export const STAT_OK = 0;
/** The request completed, the operation failed (not found, not saved). */
export const STAT_ERR = -1;
/** The request could not complete (malformed, unknown, a disabled cache). */
export const STAT_FAIL = -2;

/** The attributes each request carries (tlsmgr reads them with ATTR_FLAG_STRICT: none missing, none extra). */
export const REQUEST_ATTRS: Record<string, readonly string[]> = {
  seed: ['size'],
  policy: ['cache_type'],
  lookup: ['cache_type', 'cache_id'],
  update: ['cache_type', 'cache_id', 'session'],
  delete: ['cache_type', 'cache_id'],
  tktkey: ['keyname'],
};

/** Postfix's client caches, which ticketbooth serves; `smtpd` (inbound) is never ours. */
export const CLIENT_CACHES = new Set(['smtp', 'lmtp']);
export const KNOWN_CACHES = new Set(['smtp', 'lmtp', 'smtpd']);

/** The request's name when its attributes are exactly what tlsmgr expects for it; undefined otherwise. */
export function wellFormed(req: Attrs): string | undefined {
  const name = req.get('request');
  if (name === undefined || !Object.hasOwn(REQUEST_ATTRS, name)) return undefined;
  const expected = REQUEST_ATTRS[name];
  if (req.size !== expected.length + 1) return undefined;
  return expected.every((a) => req.has(a)) ? name : undefined;
}

/** The reply to a request tlsmgr could not serve: the status, and the empty fields its reply carries. */
export function failReply(name: string | undefined, status = STAT_FAIL): Reply {
  const reply: Reply = [['status', encodeInt(status)]];
  if (name === 'lookup') reply.push(['session', '']);
  if (name === 'seed') reply.push(['seed', '']);
  if (name === 'tktkey') reply.push(['keybuf', '']);
  if (name === 'policy') reply.push(['cachable', '0'], ['timeout', '0']);
  return reply;
}

/** As tlsmgr(8) with every cache it is asked about disabled (`smtpd_tls_session_cache_timeout = 0`, no database). */
export function disabledReply(name: string, req: Attrs): Reply {
  switch (name) {
    case 'seed': {
      // tlsmgr's RAND_bytes, 1..255; without an answer, every smtp(8) TLS start logs a warning.
      const size = decodeInt(req.get('size'));
      if (size === undefined || size <= 0 || size > 255) return failReply(name);
      return [
        ['status', encodeInt(STAT_OK)],
        ['seed', encodeData(randomBytes(size))],
      ];
    }
    case 'policy':
      if (!KNOWN_CACHES.has(req.get('cache_type') ?? '')) return failReply(name);
      return [
        ['status', encodeInt(STAT_OK)],
        ['cachable', '0'],
        ['timeout', '0'],
      ];
    case 'tktkey':
      // A zero smtpd cache timeout: no ticket keys, so smtpd issues no RFC 5077 tickets.
      return failReply(name, STAT_ERR);
    default:
      return failReply(name);
  }
}
