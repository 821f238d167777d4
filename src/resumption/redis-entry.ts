import { isSealed, type OpenFailure, type Sealer } from './seal.js';
import type { StoredTicket } from './store.js';

/**
 * What the Redis store writes and reads back. A session entry is `expiresAt:hash:` in the clear
 * (the scripts read it: expiry, dedupe) followed by the session, sealed when `cache.store.seal` is
 * set. The sealed session's associated data is the destination id and that clear prefix, so an
 * entry moved to another destination, or with its expiry or hash altered, does not open. A shared
 * value (an MTA-STS policy) is sealed whole, bound to its name: it is public, but a planted one
 * could lower a domain's policy. Versions and the refusal flag stay clear: not secret, and a
 * forged one costs at most a full handshake.
 *
 * An entry that does not open is dropped, never offered, counted by reason, and said on stderr
 * once per reason and key id.
 */

const SAY = {
  'unknown-key': (id) => `sealed under key "${id}", which cache.store.seal.keys does not list (removed by a rotation?)`,
  unauthentic: (id) =>
    `sealed under key "${id}" that fails authentication (altered, moved from another slot, or another key under that id)`,
  unsealed: () => 'not sealed, while cache.store.seal is set (written by an instance without seal?)',
  sealed: () => 'sealed, while this instance has no cache.store.seal',
} as const satisfies Record<OpenFailure, (keyId: string) => string>;

export class EntryCodec {
  /** Entries dropped unopened, by reason (the metric ticketbooth_store_dropped_total). */
  readonly dropped: Record<OpenFailure, number> = { 'unknown-key': 0, unauthentic: 0, unsealed: 0, sealed: 0 };
  private readonly said = new Set<string>();

  constructor(
    private readonly sealer: Sealer | undefined,
    private readonly report: (message: string) => void,
  ) {}

  encode(id: string, t: StoredTicket): Buffer {
    if (t.hash.includes(':')) throw new Error('ticket hash must not contain ":"');
    const prefix = Buffer.from(`${t.expiresAt}:${t.hash}:`, 'latin1');
    return Buffer.concat([prefix, this.sealer ? this.sealer.seal(t.session, sessionContext(id, prefix)) : t.session]);
  }

  /** The ticket, or undefined when the entry does not open (then dropped and counted). */
  decode(id: string, entry: Buffer): StoredTicket | undefined {
    const first = entry.indexOf(0x3a);
    const second = entry.indexOf(0x3a, first + 1);
    if (first < 0 || second < 0) throw new Error('malformed ticket entry in Redis');
    const prefix = entry.subarray(0, second + 1);
    const session = this.open(entry.subarray(second + 1), sessionContext(id, prefix), 'a session');
    if (!session) return undefined;
    return {
      expiresAt: Number(entry.subarray(0, first).toString('latin1')),
      hash: entry.subarray(first + 1, second).toString('latin1'),
      session,
    };
  }

  encodeValue(name: string, value: string): Buffer {
    const plain = Buffer.from(value, 'utf8');
    return this.sealer ? this.sealer.seal(plain, valueContext(name)) : plain;
  }

  decodeValue(name: string, raw: Buffer): string | undefined {
    return this.open(raw, valueContext(name), `the shared value ${name}`)?.toString('utf8');
  }

  private open(blob: Buffer, context: Buffer, what: string): Buffer | undefined {
    if (!this.sealer) return isSealed(blob) ? this.drop('sealed', '', what) : Buffer.from(blob);
    const opened = this.sealer.open(blob, context);
    return opened.ok ? opened.plain : this.drop(opened.why, opened.keyId ?? '', what);
  }

  private drop(why: OpenFailure, keyId: string, what: string): undefined {
    this.dropped[why]++;
    const once = `${why}\0${keyId}`;
    if (!this.said.has(once)) {
      this.said.add(once);
      this.report(
        `redis store: dropped ${what} ${SAY[why](keyId)}; such entries are never used ` +
          `(ticketbooth_store_dropped_total{reason="${why}"})`,
      );
    }
    return undefined;
  }
}

function sessionContext(id: string, prefix: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`ticketbooth session\0${id}\0`, 'utf8'), prefix]);
}

function valueContext(name: string): Buffer {
  return Buffer.from(`ticketbooth value\0${name}`, 'utf8');
}
