/**
 * Calls between a primary and its workers over the cluster IPC channel (structured clone: Buffers
 * arrive as Uint8Arrays). Each side serves a table of methods and calls the other's, typed by the
 * same interface on both ends (protocol.ts), so a method cannot be called that is not served.
 */

/** Either end of the channel: the worker's `process`, or the primary's `cluster.Worker`. */
export interface Port {
  send(message: unknown, callback: (err: Error | null) => void): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  once(event: 'disconnect', listener: () => void): unknown;
}

/** Every method one side serves: arguments in, a value (or nothing) out. */
export type Methods = { [name: string]: (...args: never[]) => unknown };

/** How one side serves a table of methods: each may answer now or later. */
export type Served<M extends Methods> = {
  [K in keyof M]: (...args: Parameters<M[K]>) => ReturnType<M[K]> | Promise<ReturnType<M[K]>>;
};

type One =
  | { tb: 'call'; id: number; method: string; args: unknown[] }
  | { tb: 'note'; method: string; args: unknown[] }
  | { tb: 'reply'; id: number; value?: unknown; error?: string };
/** What one turn of the event loop sent, as one message: a message's fixed cost (framing, a write, a read) is most of a small one's. */
type Wire = One | { tb: 'batch'; items: One[] };

/** A message waiting in the outbox: what to do once it is sent (or failed on the way), or if it cannot be (not cloneable). */
interface Outgoing {
  message: One;
  sent: (err: Error | null) => void;
  unsendable: (err: unknown) => void;
}

/** Who the far side is, for errors: "worker 2", "primary". */
export class Channel<Local extends Methods, Remote extends Methods> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private handlers: Partial<Served<Local>> = {};
  private gone?: Error;
  /** Messages waiting for the end of this turn of the event loop. */
  private outbox: Outgoing[] = [];

  /** `trouble` hears what goes wrong on this side and no caller would hear: a failed note, an answer that could not be sent. */
  constructor(
    private readonly port: Port,
    private readonly far: string,
    private readonly trouble: (what: string) => void,
  ) {
    port.on('message', (m) => this.receive(m));
    port.once('disconnect', () => {
      this.gone = new Error(`${far} is gone`);
      for (const p of this.pending.values()) p.reject(this.gone);
      this.pending.clear();
    });
  }

  /** Serves these methods to the far side (added to those served already). */
  serve(handlers: Partial<Served<Local>>): void {
    this.handlers = { ...this.handlers, ...handlers };
  }

  call<K extends keyof Remote & string>(method: K, ...args: Parameters<Remote[K]>): Promise<Awaited<ReturnType<Remote[K]>>> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const fail = (err: unknown): void => {
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      this.post({ message: { tb: 'call', id, method, args }, sent: (err) => err && fail(err), unsendable: fail });
    });
  }

  /** A call whose answer nobody waits for; resolves once handed to the channel. */
  note<K extends keyof Remote & string>(method: K, ...args: Parameters<Remote[K]>): Promise<void> {
    if (this.gone) return Promise.resolve();
    return new Promise((resolve) =>
      this.post({
        message: { tb: 'note', method, args },
        sent: () => resolve(),
        unsendable: (err) => {
          this.trouble(`a ${method} note to ${this.far} could not be sent: ${String(err)}`);
          resolve();
        },
      }),
    );
  }

  /** Sends at the end of this turn of the event loop, with whatever else this turn sends. */
  private post(out: Outgoing): void {
    if (this.outbox.push(out) === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.outbox;
    this.outbox = [];
    if (batch.length === 1) return this.send(batch[0]);
    try {
      this.port.send({ tb: 'batch', items: batch.map((o) => o.message) } satisfies Wire, (err) => {
        for (const o of batch) o.sent(err);
      });
    } catch {
      // One of them cannot be cloned: each on its own, so that only that one fails.
      for (const o of batch) this.send(o);
    }
  }

  private send(o: Outgoing): void {
    try {
      this.port.send(o.message, o.sent);
    } catch (err) {
      o.unsendable(err);
    }
  }

  private receive(message: unknown): void {
    const w = message as Wire;
    if (typeof w !== 'object' || w === null || !('tb' in w)) return; // cluster's or another library's own
    if (w.tb === 'batch') for (const m of w.items) this.receiveOne(m);
    else this.receiveOne(w);
  }

  private receiveOne(m: One): void {
    if (m.tb === 'reply') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error === undefined) p?.resolve(m.value);
      else p?.reject(new Error(m.error));
      return;
    }
    const run = async (): Promise<unknown> => {
      const handler = this.handlers[m.method] as ((...a: unknown[]) => unknown) | undefined;
      if (!handler) throw new Error(`${this.far} asked for ${m.method}, which is not served here`);
      return handler(...m.args);
    };
    const answer = run();
    if (m.tb === 'note') {
      answer.catch((err: unknown) => this.trouble(`${m.method} from ${this.far} failed: ${String(err)}`));
      return;
    }
    answer.then(
      (value) => this.reply({ tb: 'reply', id: m.id, value }),
      (err: unknown) => this.reply({ tb: 'reply', id: m.id, error: err instanceof Error ? err.message : String(err) }),
    );
  }

  private reply(r: One): void {
    if (this.gone) return;
    this.post({
      message: r,
      sent: () => undefined,
      // An answer that cannot be sent (not cloneable): the caller waits in vain; say it here.
      unsendable: (err) => this.trouble(`an answer to ${this.far} could not be sent: ${String(err)}`),
    });
  }
}
