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

interface Tlv {
  tag: number;
  value: Buffer;
  next: number;
}

function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new SessionParseError('malformed-der', `truncated TLV at ${offset}`);
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new SessionParseError('malformed-der', `multi-byte tag at ${offset}`);
  let len = buf[offset + 1];
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || pos + n > buf.length) throw new SessionParseError('malformed-der', `bad length at ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i];
    pos += n;
  }
  if (pos + len > buf.length) throw new SessionParseError('malformed-der', `value overruns buffer at ${offset}`);
  return { tag, value: buf.subarray(pos, pos + len), next: pos + len };
}

function readUint(value: Buffer): number {
  if (value.length > 7) throw new SessionParseError('malformed-der', 'integer too large');
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}

/** The universal INTEGER or OCTET STRING inside an EXPLICIT context tag. */
function inner(value: Buffer, expectTag: number): Buffer {
  const tlv = readTlv(value, 0);
  if (tlv.tag !== expectTag) throw new SessionParseError('malformed-der', `expected tag ${expectTag}, got ${tlv.tag}`);
  return tlv.value;
}

const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const SEQUENCE = 0x30;
const CONTEXT = 0xa0; // context-specific, constructed

export function parseSession(buf: Buffer): SessionInfo {
  const { der, servername } = unwrapSession(buf);
  const outer = readTlv(der, 0);
  if (outer.tag !== SEQUENCE) throw new SessionParseError('malformed-der', 'not a DER SEQUENCE');
  if (outer.next !== der.length) throw new SessionParseError('malformed-der', 'bytes after the session');
  const body = outer.value;
  let pos = 0;
  const field = (tag: number): Buffer => {
    const tlv = readTlv(body, pos);
    if (tlv.tag !== tag) throw new SessionParseError('malformed-der', `expected tag ${tag} at ${pos}, got ${tlv.tag}`);
    pos = tlv.next;
    return tlv.value;
  };
  field(INTEGER); // ASN.1 structure version
  const sslVersion = readUint(field(INTEGER));
  field(OCTET_STRING); // cipher
  const sessionId = field(OCTET_STRING);
  field(OCTET_STRING); // master key: never kept, never logged

  const info: SessionInfo = {
    version: sslVersion === 0x0304 ? 'TLSv1.3' : sslVersion === 0x0303 ? 'TLSv1.2' : 'other',
    issuedAt: 0,
    sessionId: Buffer.from(sessionId),
    ...(servername !== undefined ? { boundTo: servername } : {}),
  };
  while (pos < body.length) {
    const tlv = readTlv(body, pos);
    pos = tlv.next;
    if ((tlv.tag & 0xe0) !== CONTEXT) continue;
    switch (tlv.tag & 0x1f) {
      case 1:
        info.issuedAt = readUint(inner(tlv.value, INTEGER));
        break;
      case 9:
        info.lifetimeHint = readUint(inner(tlv.value, INTEGER));
        break;
      case 10:
        info.ticket = Buffer.from(inner(tlv.value, OCTET_STRING));
        break;
      default:
        break; // peer cert, hostname, alpn, kex group, ...: not ours to read
    }
  }
  return info;
}
