import type { StoredMessage } from '../test/support/smtp-fault-server.js';
import { normalizeParams, type Entry, type Envelope, type Ledger } from './ledger.js';

/**
 * The receiving side's verdict: each message in the ledger against the copies the sinks stored,
 * matched by Message-Id. A message the client was told 250 for is delivered exactly once with the
 * same envelope and body bytes; one it was refused (or never finished) is not delivered at all,
 * except the documented duplicate-after-dot (a copy taken by the next hop whose reply was lost).
 */
export interface Finding {
  id: string;
  kind: string;
  session: number;
  detail: string;
}

export interface Verdict {
  messages: number;
  /** Attempts answered 250 to the final dot. */
  accepted: number;
  /** Copies stored by the sinks. */
  delivered: number;
  /** 250, and no copy. */
  lost: Finding[];
  /** More copies than 250s (a 4xx after the dot without the documented excuse counts here: it will be retried). */
  duplicated: Finding[];
  /** A copy whose envelope or body differs from what the client sent. */
  altered: Finding[];
  /** A copy of something the client never finished, was refused with a 5xx for, never sent, or must never arrive. */
  phantom: Finding[];
  /** Copies explained by a reply lost after the dot (RFC 1047): no finding. */
  documentedDuplicates: number;
}

export function messageIdOf(body: Buffer): string | undefined {
  return /^Message-Id:[ \t]*<([^>\r\n]+)>/im.exec(body.toString('latin1'))?.[1];
}

export function check(ledger: Ledger, stored: readonly StoredMessage[]): Verdict {
  const copies = new Map<string, StoredMessage[]>();
  const v: Verdict = {
    messages: ledger.entries.size,
    accepted: 0,
    delivered: stored.length,
    lost: [],
    duplicated: [],
    altered: [],
    phantom: [],
    documentedDuplicates: 0,
  };
  for (const m of stored) {
    const id = messageIdOf(m.body) ?? '(no Message-Id)';
    const list = copies.get(id) ?? [];
    list.push(m);
    copies.set(id, list);
  }
  for (const [id, list] of copies) {
    if (!ledger.entries.has(id))
      v.phantom.push({
        id,
        kind: '?',
        session: -1,
        detail: `${list.length} cop${list.length === 1 ? 'y' : 'ies'} of a message nobody sent`,
      });
  }
  for (const e of ledger.entries.values()) judge(e, copies.get(e.id) ?? [], v);
  return v;
}

function judge(e: Entry, got: StoredMessage[], v: Verdict): void {
  const at = (detail: string): Finding => ({ id: e.id, kind: e.kind, session: e.session, detail });
  const accepted = e.attempts.filter((a) => a.outcome === 'accepted').length;
  v.accepted += accepted;
  for (const m of got) {
    const diff = difference(e, m);
    if (diff && !e.never) v.altered.push(at(diff));
  }
  if (e.never) {
    if (got.length > 0) v.phantom.push(at(`${got.length} cop${got.length === 1 ? 'y' : 'ies'} of a message that must never arrive`));
    return;
  }
  const excused = e.attempts.filter((a) => a.dotSent && a.outcome !== 'accepted' && (a.dupAllowed || a.outcome === 'no-reply')).length;
  const dotSent = e.attempts.some((a) => a.dotSent);
  const fiveXX = e.attempts.some((a) => a.dotSent && a.code >= 500);
  if (accepted > got.length) {
    v.lost.push(at(`${accepted} × 250, ${got.length} cop${got.length === 1 ? 'y' : 'ies'} stored`));
    return;
  }
  const extra = got.length - accepted;
  if (extra === 0) return;
  if (extra <= excused) {
    v.documentedDuplicates += extra;
    return;
  }
  const codes = e.attempts.map((a) => `${a.code || a.outcome}${a.dotSent ? '' : ' (no dot)'}`).join(', ');
  if (accepted === 0 && (!dotSent || fiveXX))
    v.phantom.push(at(`stored ${got.length}× though the client ${dotSent ? 'was refused' : 'never finished it'}: ${codes}`));
  else v.duplicated.push(at(`stored ${got.length}× for ${accepted} × 250: ${codes}`));
}

/** How a stored copy differs from the ledger's message, or undefined when it is byte for byte the same. */
export function difference(e: Entry, m: StoredMessage): string | undefined {
  const seen = envelopeOf(m);
  const want = e.envelope;
  if (!seen) return `unparsable envelope ${hex(m.mailLine)}`;
  if (!seen.from.equals(want.from)) return `sender ${hex(want.from)} arrived as ${hex(seen.from)}`;
  if (seen.rcpts.length !== want.rcpts.length || seen.rcpts.some((r, i) => !r.equals(want.rcpts[i]))) {
    return `recipients ${want.rcpts.map(hex).join(',')} arrived as ${seen.rcpts.map(hex).join(',')}`;
  }
  if (seen.params.join(' ') !== want.params.join(' '))
    return `MAIL parameters ${want.params.join(' ')} arrived as ${seen.params.join(' ')}`;
  if (!m.body.equals(e.body)) {
    let i = 0;
    while (i < m.body.length && i < e.body.length && m.body[i] === e.body[i]) i++;
    return `body differs at byte ${i} of ${e.body.length} (stored ${m.body.length}): sent ${hex(e.body.subarray(i, i + 12))}, stored ${hex(m.body.subarray(i, i + 12))}`;
  }
  return undefined;
}

/** The envelope from the sink's raw command lines: `MAIL FROM:<addr> params`, `RCPT TO:<addr>`. */
function envelopeOf(m: StoredMessage): Envelope | undefined {
  const mail = pathAndRest(m.mailLine, 'MAIL FROM:');
  if (!mail) return undefined;
  const rcpts: Buffer[] = [];
  for (const line of m.rcptLines) {
    const r = pathAndRest(line, 'RCPT TO:');
    if (!r) return undefined;
    rcpts.push(r.path);
  }
  const params = mail.rest
    .toString('latin1')
    .split(' ')
    .filter((p) => p !== '');
  return { from: mail.path, rcpts, params: normalizeParams(params) };
}

function pathAndRest(line: Buffer, verb: string): { path: Buffer; rest: Buffer } | undefined {
  if (line.subarray(0, verb.length).toString('latin1').toUpperCase() !== verb) return undefined;
  const open = line.indexOf(0x3c, verb.length); // <
  const close = line.lastIndexOf(0x3e); // >: the last, so a `>` inside a quoted local part is kept
  if (open < 0 || close < open) return undefined;
  return { path: line.subarray(open + 1, close), rest: line.subarray(close + 1) };
}

function hex(b: Buffer): string {
  return /^[\x20-\x7e]*$/.test(b.toString('latin1')) ? JSON.stringify(b.toString('latin1')) : `0x${b.toString('hex')}`;
}

export function summary(v: Verdict): string {
  return `${v.messages} messages, ${v.accepted} accepted, ${v.delivered} stored: lost ${v.lost.length}, duplicated ${v.duplicated.length}, altered ${v.altered.length}, phantom ${v.phantom.length}${v.documentedDuplicates ? ` (documented duplicates after the dot: ${v.documentedDuplicates})` : ''}`;
}

export function clean(v: Verdict): boolean {
  return v.lost.length + v.duplicated.length + v.altered.length + v.phantom.length === 0;
}
