import { normalizeParams, type Attempt, type Envelope, type Ledger } from './ledger.js';
import { onTheWire } from './message.js';
import { codeOf, type Heard, type Wire } from './wire.js';

/** One message as the client sends it. */
export interface Tx {
  id: string;
  kind: string;
  session: number;
  from: Buffer;
  rcpts: Buffer[];
  /** MAIL parameters as written, e.g. `SMTPUTF8`, `BODY=8BITMIME`. */
  params?: string[];
  /** The message before dot-stuffing, lines ending in CRLF. */
  body: Buffer;
  /** The verbs as written (case, a space after the colon); default `MAIL FROM:` and `RCPT TO:`. */
  verbs?: { mail: string; rcpt: string };
  /** The body goes out as it is, no dot-stuffing: for smuggling shapes, whose dots are the point. */
  raw?: boolean;
  /** MAIL, RCPT and DATA in one write (RFC 2920). */
  pipelined?: boolean;
  /** How the stuffed message and its dot are cut into writes (default: one write). */
  split?: (wire: Buffer) => Buffer[];
  /** Written right behind the final dot, in the same write (QUIT, the next transaction...). */
  after?: Buffer;
  /** Half-close (FIN) right after the last write: the replies must still come. */
  halfClose?: boolean;
  /** A copy without a 250 is no fault (the fault matrix's next hop stores, then drops). */
  dupAllowed?: boolean;
  /** Reply wait for the final dot (ms). */
  finalTimeoutMs?: number;
}

export interface TxResult {
  mail: Heard;
  rcpts: Heard[];
  data?: Heard;
  final?: Heard;
  attempt: Attempt;
}

const line = (verb: string, path: Buffer, params: string[] = []): Buffer =>
  Buffer.concat([
    Buffer.from(verb, 'latin1'),
    Buffer.from('<'),
    path,
    Buffer.from('>'),
    Buffer.from(params.map((p) => ` ${p}`).join(''), 'latin1'),
    Buffer.from('\r\n'),
  ]);

/** MAIL, RCPT..., DATA, the message, the dot; each step's reply; the ledger learns the outcome. */
export async function transact(w: Wire, ledger: Ledger, tx: Tx): Promise<TxResult> {
  const envelope: Envelope = { from: tx.from, rcpts: [], params: normalizeParams(tx.params ?? []) };
  const attempt = ledger.attempt(tx.id, tx.kind, tx.session, envelope, tx.body);
  attempt.dupAllowed = tx.dupAllowed ?? false;
  const mailLine = line(tx.verbs?.mail ?? 'MAIL FROM:', tx.from, tx.params);
  const rcptLines = tx.rcpts.map((r) => line(tx.verbs?.rcpt ?? 'RCPT TO:', r));
  const settle = (h: Heard | undefined): void => {
    attempt.code = h === undefined ? 0 : codeOf(h);
  };
  let mail: Heard;
  const rcpts: Heard[] = [];
  let data: Heard;
  if (tx.pipelined) {
    await w.write(Buffer.concat([mailLine, ...rcptLines, Buffer.from('DATA\r\n')]));
    mail = await w.read();
    for (let i = 0; i < rcptLines.length; i++) rcpts.push(await w.read());
    data = await w.read();
  } else {
    await w.write(mailLine);
    mail = await w.read();
    if (codeOf(mail) !== 250) {
      settle(mail);
      return { mail, rcpts, attempt };
    }
    for (const r of rcptLines) {
      await w.write(r);
      rcpts.push(await w.read());
    }
    if (!rcpts.some((r) => codeOf(r) === 250)) {
      settle(rcpts.at(-1));
      return { mail, rcpts, attempt };
    }
    await w.write('DATA\r\n');
    data = await w.read();
  }
  rcpts.forEach((r, i) => {
    if (codeOf(r) >= 200 && codeOf(r) < 300) envelope.rcpts.push(tx.rcpts[i]);
  });
  if (codeOf(data) !== 354) {
    settle(data);
    return { mail, rcpts, data, attempt };
  }
  const wire = onTheWire(tx.body, tx.raw);
  const writes = tx.split ? tx.split(wire) : [wire];
  if (tx.after) writes[writes.length - 1] = Buffer.concat([writes.at(-1)!, tx.after]);
  for (const chunk of writes) await w.write(chunk);
  if (tx.halfClose) w.end();
  attempt.dotSent = true;
  const final = await w.read(tx.finalTimeoutMs ?? 60_000);
  settle(final);
  attempt.outcome = codeOf(final) === 250 ? 'accepted' : typeof final === 'string' ? 'no-reply' : 'refused';
  return { mail, rcpts, data, final, attempt };
}
