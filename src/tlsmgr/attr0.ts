/**
 * Postfix's attribute protocol as tlsmgr(8) and its clients speak it (src/util/attr_print0.c,
 * attr_scan0.c; `attr_print` is `attr_print0`): each attribute is `name\0value\0`, a list ends
 * with an empty name (`\0`). Integers are unsigned decimal (`%u`: status -2 travels as
 * 4294967294), binary data is base64. Names and values are plain bytes; we read them as latin1
 * so that no byte is lost or merged.
 */
import { TicketboothError } from '../errors/index.js';

export type Attrs = Map<string, string>;

/** A list Postfix would refuse, or one bigger than we accept. */
export class AttrError extends TicketboothError {
  readonly code = 'ERR_TLSMGR_ATTR';
}

/** Names the service announces on accept (tlsmgr_post_accept); clients since Postfix 3.x check it. */
export const ANNOUNCEMENT: Array<[string, string]> = [['protocol', 'tlsmgr_protocol']];

export function encodeAttrs(attrs: Iterable<[string, string]>): Buffer {
  const parts: string[] = [];
  for (const [name, value] of attrs) parts.push(name, '\0', value, '\0');
  parts.push('\0');
  return Buffer.from(parts.join(''), 'latin1');
}

/** `%u` of a C int: negative statuses wrap as Postfix prints them. */
export function encodeInt(n: number): string {
  return String(n >>> 0);
}

/** An attribute Postfix read with `%u` into an int; undefined when it is not a number. */
export function decodeInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n > 0xffffffff ? undefined : n | 0;
}

export function encodeData(buf: Buffer): string {
  return buf.toString('base64');
}

/** Strict base64 (Postfix's base64_decode rejects other bytes); undefined when malformed. */
export function decodeData(value: string | undefined): Buffer | undefined {
  if (value === undefined || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return undefined;
  return Buffer.from(value, 'base64');
}

/**
 * Splits a byte stream into attribute lists. `push` takes whatever arrived and returns the lists
 * completed so far; a list (or the bytes waiting for one) past `maxBytes`, or an attribute named
 * twice, throws AttrError: the stream cannot be resynchronised after that, so the caller replies
 * and closes.
 */
export class AttrReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes: number) {}

  /** Bytes received that are not yet a whole list (a slow or stuck client shows here). */
  get buffered(): number {
    return this.pending.length;
  }

  push(chunk: Buffer): Attrs[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const lists: Attrs[] = [];
    for (;;) {
      const end = listEnd(this.pending);
      if (end < 0) break;
      if (end > this.maxBytes) throw new AttrError(`request over ${this.maxBytes} bytes`);
      lists.push(parseList(this.pending.subarray(0, end)));
      this.pending = this.pending.subarray(end);
    }
    if (this.pending.length > this.maxBytes) throw new AttrError(`request over ${this.maxBytes} bytes`);
    return lists;
  }
}

/** The offset just past a whole list (its empty name), or -1 while it is incomplete. */
function listEnd(buf: Buffer): number {
  let pos = 0;
  for (;;) {
    const nameEnd = buf.indexOf(0, pos);
    if (nameEnd < 0) return -1;
    if (nameEnd === pos) return pos + 1;
    const valueEnd = buf.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return -1;
    pos = valueEnd + 1;
  }
}

function parseList(buf: Buffer): Attrs {
  const attrs: Attrs = new Map();
  const fields = buf.toString('latin1').split('\0');
  // name, value, name, value, ..., '' (the terminator), '' (after its NUL)
  for (let i = 0; i + 1 < fields.length - 2; i += 2) {
    const name = fields[i];
    if (attrs.has(name)) throw new AttrError(`attribute "${printable(name)}" twice`);
    attrs.set(name, fields[i + 1]);
  }
  return attrs;
}

/** For messages: control bytes shown as `?`, at most 40 characters. */
export function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}
