/** Messages the campaign sends: headers carrying the Message-Id the verdict keys on, then lines. */

export function messageBody(id: string, subject: string, lines: Array<string | Buffer>): Buffer {
  const head = `From: <sender@client.test>\r\nTo: <rcpt@dest.test>\r\nSubject: stress ${subject}\r\nMessage-Id: <${id}>\r\n\r\n`;
  const parts: Buffer[] = [Buffer.from(head, 'latin1')];
  for (const l of lines) parts.push(typeof l === 'string' ? Buffer.from(l, 'utf8') : l, CRLF);
  return Buffer.concat(parts);
}

/** Dot-stuffing (RFC 5321 4.5.2) of a message whose lines end in CRLF; bare LFs are left alone. */
export function stuff(body: Buffer): Buffer {
  const s = body.toString('latin1').replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(s, 'latin1');
}

/** The message as written after DATA: stuffed, CRLF-terminated, then the end-of-data line. */
export function onTheWire(body: Buffer, raw = false): Buffer {
  const stuffed = raw ? body : stuff(body);
  const ends = stuffed.length >= 2 && stuffed[stuffed.length - 2] === 0x0d && stuffed[stuffed.length - 1] === 0x0a;
  return Buffer.concat([stuffed, ends ? Buffer.alloc(0) : CRLF, DOT_LINE]);
}

const CRLF = Buffer.from('\r\n');
const DOT_LINE = Buffer.from('.\r\n');
