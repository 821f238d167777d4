import { SessionParseError } from './session-error.js';

/**
 * Node 22 and later wrap the session in an envelope that binds it to the name it was authenticated
 * for, and refuse to resume it under another (lib/_tls_wrap.js, `wrapSessionState`):
 *
 *   "\0nodejs:tls:session:1\0" | uint16 big-endian length | servername (UTF-8) | i2d_SSL_SESSION DER
 *
 * The servername is `servername || host || socket._host || 'localhost'` of the connection that
 * received it. Node 20 hands out the bare DER. Both are read here; anything else is refused.
 */

const PREFIX = Buffer.from('\0nodejs:tls:session:1\0', 'latin1');
/** Any future envelope version starts like this; we name it rather than call it malformed. */
const FAMILY = Buffer.from('\0nodejs:tls:session:', 'latin1');
const DER_SEQUENCE = 0x30;

export interface Unwrapped {
  /** The i2d_SSL_SESSION bytes. */
  der: Buffer;
  /** The name Node bound the session to; undefined for a bare DER buffer (Node 20). */
  servername?: string;
  format: 'node-envelope-1' | 'bare-der';
}

export function unwrapSession(buf: Buffer): Unwrapped {
  if (buf.length > 0 && buf[0] === DER_SEQUENCE) return { der: buf, format: 'bare-der' };
  if (startsWith(buf, PREFIX)) {
    const at = PREFIX.length;
    if (buf.length < at + 2) throw new SessionParseError('truncated-envelope', 'no servername length');
    const nameEnd = at + 2 + buf.readUInt16BE(at);
    if (buf.length < nameEnd) throw new SessionParseError('truncated-envelope', 'servername overruns the buffer');
    if (buf.length === nameEnd) throw new SessionParseError('truncated-envelope', 'no session after the servername');
    return { der: buf.subarray(nameEnd), servername: buf.toString('utf8', at + 2, nameEnd), format: 'node-envelope-1' };
  }
  if (startsWith(buf, FAMILY)) throw new SessionParseError('unknown-envelope', 'a Node session envelope of another version');
  throw new SessionParseError('unknown-envelope', 'neither a Node session envelope nor DER');
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.subarray(0, prefix.length).equals(prefix);
}
