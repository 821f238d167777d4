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

type Wire =
  | { tb: 'call'; id: number; method: string; args: unknown[] }
  | { tb: 'note'; method: string; args: unknown[] }
  | { tb: 'reply'; id: number; value?: unknown; error?: string };

/** Who the far side is, for errors: "worker 2", "primary". */
export class Channel<Local extends Methods, Remote extends Methods> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private handlers: Partial<Served<Local>> = {};
  private gone?: Error;

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
      this.port.send({ tb: 'call', id, method, args } satisfies Wire, (err) => {
        if (!err) return;
        this.pending.delete(id);
        reject(err);
      });
    });
  }

  /** A call whose answer nobody waits for; resolves once handed to the channel. */
  note<K extends keyof Remote & string>(method: K, ...args: Parameters<Remote[K]>): Promise<void> {
    if (this.gone) return Promise.resolve();
    return new Promise((resolve) => this.port.send({ tb: 'note', method, args } satisfies Wire, () => resolve()));
  }

  private receive(message: unknown): void {
    const m = message as Wire;
    if (typeof m !== 'object' || m === null || !('tb' in m)) return; // cluster's or another library's own
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

  private reply(r: Wire): void {
    if (this.gone) return;
    try {
      this.port.send(r, () => undefined);
    } catch (err) {
      // An answer that cannot be sent (not cloneable): the caller waits in vain; say it here.
      this.trouble(`an answer to ${this.far} could not be sent: ${String(err)}`);
    }
  }
}
