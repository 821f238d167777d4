import { SessionParseError } from './session-error.js';
import { unwrapSession } from './session-envelope.js';

/**
 * Reads the few fields ticketbooth needs from a session buffer Node hands out: OpenSSL's
 * i2d_SSL_SESSION, bare (Node 20) or inside Node's envelope (22+, see session-envelope.ts).
 * Small on purpose: a SEQUENCE of five universal fields, then optional EXPLICIT context-tagged
 * fields; tags we do not know are skipped.
 */

export { SessionParseError } from './session-error.js';

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3' | 'other';

export interface SessionInfo {
  version: TlsVersion;
  /** Seconds since the epoch at which the session or ticket was issued. */
  issuedAt: number;
  /** The server's ticket lifetime hint in seconds; undefined when the server sent none. */
  lifetimeHint?: number;
  /** The opaque ticket (TLS 1.3 PSK identity or TLS 1.2 RFC 5077 ticket). */
  ticket?: Buffer;
  /** The TLS 1.2 session id (empty for stateless tickets). */
  sessionId: Buffer;
  /** The name Node bound the session to (its envelope); undefined for bare DER. */
  boundTo?: string;
}

/** One TLV of `buf`: its value is `buf[start, next)`, cut out only by a caller that keeps it (a session has a dozen fields). */
interface Tlv {
  tag: number;
  start: number;
  next: number;
}

/** The TLV at `offset`, which must lie within `buf[.., end)`. */
function readTlv(buf: Buffer, offset: number, end: number): Tlv {
  if (offset + 2 > end) throw new SessionParseError('malformed-der', `truncated TLV at ${offset}`);
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new SessionParseError('malformed-der', `multi-byte tag at ${offset}`);
  let len = buf[offset + 1];
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || pos + n > end) throw new SessionParseError('malformed-der', `bad length at ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i];
    pos += n;
  }
  if (pos + len > end) throw new SessionParseError('malformed-der', `value overruns buffer at ${offset}`);
  return { tag, start: pos, next: pos + len };
}

/** The unsigned integer in `buf[start, end)`. */
function readUint(buf: Buffer, start: number, end: number): number {
  if (end - start > 7) throw new SessionParseError('malformed-der', 'integer too large');
  let n = 0;
  for (let i = start; i < end; i++) n = n * 256 + buf[i];
  return n;
}

/** The INTEGER inside the EXPLICIT context tag `outer` of `buf`. */
function uintIn(buf: Buffer, outer: Tlv): number {
  const tlv = inner(buf, outer, INTEGER);
  return readUint(buf, tlv.start, tlv.next);
}

/** The universal INTEGER or OCTET STRING inside the EXPLICIT context tag `outer` of `buf`, as a TLV of `buf`. */
function inner(buf: Buffer, outer: Tlv, expectTag: number): Tlv {
  const tlv = readTlv(buf, outer.start, outer.next);
  if (tlv.tag !== expectTag) throw new SessionParseError('malformed-der', `expected tag ${expectTag}, got ${tlv.tag}`);
  return tlv;
}

const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const SEQUENCE = 0x30;
const CONTEXT = 0xa0; // context-specific, constructed

export function parseSession(buf: Buffer): SessionInfo {
  const { der, servername } = unwrapSession(buf);
  const outer = readTlv(der, 0, der.length);
  if (outer.tag !== SEQUENCE) throw new SessionParseError('malformed-der', 'not a DER SEQUENCE');
  if (outer.next !== der.length) throw new SessionParseError('malformed-der', 'bytes after the session');
  // Positions are in `der`; the body runs from the SEQUENCE's value to the end.
  let pos = outer.start;
  const field = (tag: number): Tlv => {
    const tlv = readTlv(der, pos, der.length);
    if (tlv.tag !== tag) throw new SessionParseError('malformed-der', `expected tag ${tag} at ${pos - outer.start}, got ${tlv.tag}`);
    pos = tlv.next;
    return tlv;
  };
  field(INTEGER); // ASN.1 structure version
  const version = field(INTEGER);
  const sslVersion = readUint(der, version.start, version.next);
  field(OCTET_STRING); // cipher
  const sessionId = field(OCTET_STRING);
  field(OCTET_STRING); // master key: never kept, never logged

  const info: SessionInfo = {
    version: sslVersion === 0x0304 ? 'TLSv1.3' : sslVersion === 0x0303 ? 'TLSv1.2' : 'other',
    issuedAt: 0,
    sessionId: Buffer.from(der.subarray(sessionId.start, sessionId.next)),
    ...(servername !== undefined ? { boundTo: servername } : {}),
  };
  while (pos < der.length) {
    const tlv = readTlv(der, pos, der.length);
    pos = tlv.next;
    if ((tlv.tag & 0xe0) !== CONTEXT) continue;
    switch (tlv.tag & 0x1f) {
      case 1:
        info.issuedAt = uintIn(der, tlv);
        break;
      case 9:
        info.lifetimeHint = uintIn(der, tlv);
        break;
      case 10: {
        const ticket = inner(der, tlv, OCTET_STRING);
        info.ticket = Buffer.from(der.subarray(ticket.start, ticket.next));
        break;
      }
      default:
        break; // peer cert, hostname, alpn, kex group, ...: not ours to read
    }
  }
  return info;
}
