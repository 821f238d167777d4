import type { Ledger } from './ledger.js';
import { messageBody } from './message.js';
import type { Rng } from './rng.js';
import { transact, type Tx, type TxResult } from './transaction.js';
import { codeOf, show, sourceAddress, Wire, type Heard } from './wire.js';

/** A reply that was not what the documented behaviour says (README "The cleartext side"). */
export interface Mismatch {
  session: number;
  kind: string;
  what: string;
  got: string;
  want: string;
}

/**
 * What a fuzz kind gets to play one session: its generator, the ledger, and helpers that record
 * every message and every unexpected reply, so a kind is only the shape of its bad input.
 */
export class Session {
  private ids = 0;
  private readonly wires: Wire[] = [];
  /** How long a server close is awaited where one is expected (the negative control's sinks never close). */
  closeWaitMs = 5000;

  constructor(
    readonly index: number,
    readonly kind: string,
    readonly rng: Rng,
    readonly ledger: Ledger,
    readonly seed: number,
    private readonly port: number,
    private readonly mismatches: Mismatch[],
  ) {}

  async open(): Promise<Wire> {
    const w = await Wire.open(this.port, sourceAddress(this.index));
    this.wires.push(w);
    return w;
  }

  /** Closes whatever the session left open (it hung, or threw). */
  abort(): void {
    for (const w of this.wires) w.close();
  }

  /** Connects and reads the greeting. */
  async connect(): Promise<Wire> {
    const w = await this.open();
    this.expect('greeting', await w.read(), /^220 /);
    return w;
  }

  /** Connects, greets and says EHLO. */
  async ready(): Promise<Wire> {
    const w = await this.connect();
    this.expect('EHLO', await w.cmd(`EHLO client-${this.index}.test`), /^250[ -]/);
    return w;
  }

  newId(): string {
    return `${this.seed}.${this.index}.${this.ids++}@stress.test`;
  }

  /** True when `got` matches; otherwise records a mismatch. */
  expect(what: string, got: Heard, want: RegExp): boolean {
    const text = typeof got === 'string' ? got : got.raw;
    if (want.test(text)) return true;
    this.mismatches.push({ session: this.index, kind: this.kind, what, got: show(got), want: want.source });
    return false;
  }

  /** A message with this session's defaults for what `tx` leaves out. */
  tx(over: Partial<Tx> & { lines?: Array<string | Buffer> } = {}): Tx {
    const id = over.id ?? this.newId();
    const { lines, ...rest } = over;
    return {
      id,
      kind: this.kind,
      session: this.index,
      from: Buffer.from(`s${this.index}@client.test`),
      rcpts: [Buffer.from(`r${this.rng.int(0, 99)}@dest.test`)],
      body: messageBody(id, this.kind, lines ?? [`Hello from session ${this.index}.`]),
      ...rest,
    };
  }

  send(w: Wire, tx: Tx): Promise<TxResult> {
    return transact(w, this.ledger, tx);
  }

  /** A plain message that must get 250: proof the session still works after the bad input. */
  async sendValid(w: Wire, what = 'a valid message afterwards'): Promise<TxResult> {
    const r = await this.send(w, this.tx());
    this.expect(what, r.final ?? r.data ?? r.rcpts.at(-1) ?? r.mail, /^250 /);
    return r;
  }

  /** QUIT, expecting 221, and wait for the close. */
  async quit(w: Wire): Promise<void> {
    this.expect('QUIT', await w.cmd('QUIT'), /^221 /);
    await w.waitClosed(this.closeWaitMs);
    w.close();
  }
}

export const isCode = (h: Heard | undefined, code: number): boolean => h !== undefined && codeOf(h) === code;
