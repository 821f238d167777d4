/**
 * The driver's side of the story: every message it tried to send, the exact bytes, and what it was
 * told. The verdict (verdict.ts) holds this against what the sink says it received.
 */

/** An envelope as the next hop should see it: addresses as bytes, MAIL parameters normalized. */
export interface Envelope {
  from: Buffer;
  /** Recipients the client was told 250 for, in order. */
  rcpts: Buffer[];
  /** MAIL parameters, upper-cased `KEY` or `KEY=VALUE`, sorted. */
  params: string[];
}

export type Outcome =
  /** 250 to the final dot. */
  | 'accepted'
  /** A 4xx/5xx at any step, or the client never got to the final dot. */
  | 'refused'
  /** The final dot was sent, and no reply came (the client or the connection went away). */
  | 'no-reply';

export interface Attempt {
  outcome: Outcome;
  /** The client sent the final dot. */
  dotSent: boolean;
  /** The reply that settled it (code 0: none). */
  code: number;
  /**
   * A copy at the next hop is no fault even without a 250: the next hop took the message and the
   * reply to the dot was lost on the way back (RFC 1047; the client retries, a duplicate).
   */
  dupAllowed: boolean;
}

export interface Entry {
  id: string;
  /** The fuzz kind, fault or section that sent it: where a finding points. */
  kind: string;
  /** The session that sent it: `--session N` replays it. */
  session: number;
  envelope: Envelope;
  /** The message as meant, before dot-stuffing. */
  body: Buffer;
  attempts: Attempt[];
  /** Must never reach a next hop (a smuggled inner message). */
  never?: boolean;
}

export class Ledger {
  readonly entries = new Map<string, Entry>();

  /** Opens (or reopens, for a retry of the same message) an entry; returns its new attempt. */
  attempt(id: string, kind: string, session: number, envelope: Envelope, body: Buffer): Attempt {
    let e = this.entries.get(id);
    if (!e) {
      e = { id, kind, session, envelope, body, attempts: [] };
      this.entries.set(id, e);
    }
    e.envelope = envelope;
    const a: Attempt = { outcome: 'refused', dotSent: false, code: 0, dupAllowed: false };
    e.attempts.push(a);
    return a;
  }

  /** A message id that must never be delivered (the second message in a smuggling attempt). */
  never(id: string, kind: string, session: number): void {
    this.entries.set(id, {
      id,
      kind,
      session,
      envelope: { from: Buffer.alloc(0), rcpts: [], params: [] },
      body: Buffer.alloc(0),
      attempts: [],
      never: true,
    });
  }

  /** Forgets settled entries (the memory run checks as it goes, so the driver stays small). */
  delete(ids: Iterable<string>): void {
    for (const id of ids) this.entries.delete(id);
  }
}

export function normalizeParams(params: string[]): string[] {
  return params.map((p) => p.toUpperCase()).sort();
}
